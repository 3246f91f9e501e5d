/** The small page served at `/`: which services this gateway offers. */
import type { ServiceConfig } from '../config/schema.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

export function renderIndexPage(services: ServiceConfig[], links: { demo?: string } = {}): string {
  const rows = services.map((s) => `      <tr><td>${escapeHtml(s.name)}</td><td><code>${escapeHtml(s.path)}</code></td><td>${escapeHtml(s.type)}</td>`
    + `<td>${s.host ? escapeHtml(s.host.join(', ')) : 'any'}</td></tr>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Gatehouse</title>
  <style>
    body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 46rem; color: #222; }
    table { border-collapse: collapse; width: 100%; }
    th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #ddd; }
    code { background: #f4f4f4; padding: 0 .2rem; }
  </style>
</head>
<body>
  <h1>Gatehouse</h1>
  <p>A secure WebSocket gateway. Services on this gateway:</p>
  <table>
    <thead><tr><th>service</th><th>path</th><th>type</th><th>host</th></tr></thead>
    <tbody>
${rows}
    </tbody>
  </table>
  <p>Connect with any WebSocket client, e.g. <code>new WebSocket('ws://' + location.host + '/echo')</code>.</p>
${links.demo ? `  <p><a href="${escapeHtml(links.demo)}">Demo</a>: talk to a service over WebSocket or the HTTP fallback.</p>\n` : ''}
</body>
</html>
`;
}
