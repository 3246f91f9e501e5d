/**
 * The built-in configuration `gatehouse start` uses without --config: a
 * loopback listener, an echo service and the index page. Written as YAML so it
 * doubles as an example (also in examples/default.yaml).
 */
export const DEFAULT_CONFIG = `# yaml-language-server: $schema=../gatehouse.schema.json
# Gatehouse built-in default configuration
listen:
  - host: \${GATEHOUSE_HOST:-127.0.0.1}
    port: \${GATEHOUSE_PORT:-8080}
services:
  echo:
    path: /echo
    type: echo
    # Browsers: pages served by this gateway (the index and demo pages).
    origins: [self]
    # Command-line clients send no Origin; echo holds nothing worth protecting.
    allow_missing_origin: true
# For trying Gatehouse locally: tools on this machine (a conformance suite, a
# load test) are not held to the per-address handshake and connection limits.
# A configuration you write keeps them for every address unless it says so.
limits:
  exempt_addresses: [127.0.0.0/8, ::1]
# Metrics, health, the admin API and the dashboard, on loopback. Without
# GATEHOUSE_ADMIN_TOKEN, \`gatehouse start\` makes a token and prints the dashboard link.
admin:
  host: 127.0.0.1
  port: \${GATEHOUSE_ADMIN_PORT:-9090}
  token: \${GATEHOUSE_ADMIN_TOKEN:-}
`;
