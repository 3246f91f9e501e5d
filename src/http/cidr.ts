/**
 * CIDR ranges (`10.0.0.0/8`, `fd00::/8`, or a bare address) compiled into
 * Node's BlockList, which also matches IPv4-mapped IPv6 peers (`::ffff:10.1.2.3`).
 */
import { BlockList, isIP } from 'node:net';

export interface ParsedCidr { address: string; prefix: number; family: 'ipv4' | 'ipv6' }

export function parseCidr(text: string): ParsedCidr | undefined {
  const slash = text.indexOf('/');
  const address = (slash < 0 ? text : text.slice(0, slash)).trim();
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1).trim();
    if (!/^\d{1,3}$/.test(p)) return undefined;
    prefix = Number(p);
    if (prefix > max) return undefined;
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

export class CidrSet {
  private readonly list = new BlockList();
  readonly size: number;
  constructor(cidrs: readonly string[]) {
    for (const c of cidrs) {
      const p = parseCidr(c);
      if (!p) throw new Error(`not an address or CIDR range: ${JSON.stringify(c)}`);
      this.list.addSubnet(p.address, p.prefix, p.family);
    }
    this.size = cidrs.length;
  }

  has(address: string): boolean {
    if (this.size === 0) return false;
    const v = isIP(address);
    if (v === 0) return false;
    return this.list.check(address, v === 4 ? 'ipv4' : 'ipv6');
  }
}

/** The key per-address limits count under: IPv4 as is (mapped IPv6 unwrapped), IPv6 by its /64. */
export function addressKey(address: string): string {
  if (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) return address.slice(7);
  if (isIP(address) !== 6) return address;
  // One subscriber usually holds a whole /64; counting per address would let it multiply its limits.
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

function expandIPv6(address: string): string[] {
  let a = address;
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  // An embedded IPv4 tail counts as two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (v4) {
    const b = v4[1].split('.').map(Number);
    a = a.slice(0, -v4[1].length) + `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail !== undefined ? new Array<string>(8 - h.length - t.length).fill('0') : [];
  return [...h, ...fill, ...t].map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''));
}
