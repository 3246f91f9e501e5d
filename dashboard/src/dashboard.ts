/**
 * The live dashboard: reads /metrics every two seconds (and, with the admin
 * token, /api/top) from the listener that served it, and draws open
 * connections, handshakes accepted and refused, and messages per second with
 * uPlot. The numbers in the header are those of the latest scrape, so they
 * can be checked against /metrics.
 */
import uPlot from 'uplot';
import { byLabel, parseSamples, sum, type Sample } from './prometheus-text.js';

const PERIOD_MS = 2000;
const WINDOW_POINTS = 150; // five minutes

interface Totals { at: number; open: number; accepted: number; refused: number; messagesIn: number; messagesOut: number }

const points = { t: [] as number[], open: [] as number[], accepted: [] as number[], refused: [] as number[], inRate: [] as number[], outRate: [] as number[] };
let previous: Totals | undefined;
let scrapes = 0;

function el(id: string): HTMLElement {
  return document.getElementById(id) as HTMLElement;
}

function token(): string | null {
  const fromHash = /[#&]token=([^&]+)/.exec(location.hash)?.[1];
  if (fromHash) {
    sessionStorage.setItem('gatehouse-admin-token', decodeURIComponent(fromHash));
    window.history.replaceState(null, '', location.pathname);
  }
  return sessionStorage.getItem('gatehouse-admin-token');
}

function totalsOf(samples: Sample[]): Totals {
  return {
    at: Date.now() / 1000,
    open: sum(samples, 'gatehouse_connections_open'),
    accepted: sum(samples, 'gatehouse_handshakes_total', { outcome: 'accepted' }),
    refused: sum(samples, 'gatehouse_handshakes_total', { outcome: 'refused' }),
    messagesIn: sum(samples, 'gatehouse_messages_total', { direction: 'in' }),
    messagesOut: sum(samples, 'gatehouse_messages_total', { direction: 'out' }),
  };
}

function push(series: number[], v: number): void {
  series.push(v);
  if (series.length > WINDOW_POINTS) series.shift();
}

function record(now: Totals): void {
  const dt = previous ? Math.max(0.001, now.at - previous.at) : 1;
  const rate = (a: number, b: number | undefined): number => (b === undefined ? 0 : Math.max(0, (a - b) / dt));
  push(points.t, now.at);
  push(points.open, now.open);
  push(points.accepted, rate(now.accepted, previous?.accepted));
  push(points.refused, rate(now.refused, previous?.refused));
  push(points.inRate, rate(now.messagesIn, previous?.messagesIn));
  push(points.outRate, rate(now.messagesOut, previous?.messagesOut));
  previous = now;
}

function showNumbers(t: Totals): void {
  el('open-connections').textContent = String(t.open);
  el('handshakes-accepted').textContent = String(t.accepted);
  el('handshakes-refused').textContent = String(t.refused);
  el('messages-in').textContent = String(t.messagesIn);
  el('messages-out').textContent = String(t.messagesOut);
  el('messages-per-second').textContent = (points.inRate.at(-1) ?? 0).toFixed(1);
  el('scrapes').textContent = String(scrapes);
}

function fillTable(id: string, rows: Array<[string, ...Array<string | number>]>, empty: string): void {
  const body = el(id);
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.colSpan = 4;
    td.textContent = empty;
    tr.append(td);
    body.append(tr);
    return;
  }
  for (const row of rows) {
    const tr = document.createElement('tr');
    for (const cell of row) {
      const td = document.createElement('td');
      td.textContent = String(cell);
      tr.append(td);
    }
    body.append(tr);
  }
}

function showRefusals(samples: Sample[]): void {
  const reasons = [...byLabel(samples, 'gatehouse_rejections_total', 'reason')].sort((a, b) => b[1] - a[1]).slice(0, 10);
  fillTable('refusals', reasons.map(([r, n]) => [r, n]), 'none');
  const services = [...byLabel(samples, 'gatehouse_connections_open', 'service')].sort((a, b) => b[1] - a[1]).slice(0, 10);
  const msgs = byLabel(samples, 'gatehouse_messages_total', 'service');
  fillTable('services', services.map(([s, n]) => [s, n, msgs.get(s) ?? 0]), 'none');
}

async function showPrincipals(): Promise<void> {
  const t = token();
  if (!t) { fillTable('principals', [], 'open the link with #token=… to see principals'); return; }
  const r = await fetch('/api/top', { headers: { authorization: `Bearer ${t}` }, cache: 'no-store' });
  if (!r.ok) { fillTable('principals', [], r.status === 401 ? 'the admin token was refused' : `error ${r.status}`); return; }
  const top = await r.json() as { principals: Array<{ name: string; connections: number; bytes_in: number; bytes_out: number }> };
  fillTable('principals', top.principals.map((p) => [p.name, p.connections, p.bytes_in, p.bytes_out]), 'no authenticated connections');
}

function chart(id: string, title: string, labels: string[], data: () => number[][]): () => void {
  const target = el(id);
  const plot = new uPlot({
    title, width: Math.max(300, target.clientWidth || 460), height: 200,
    series: [{}, ...labels.map((label, i) => ({ label, stroke: ['#2a6fdb', '#d9534f', '#3c9d5d'][i], width: 2 }))],
    axes: [{}, { size: 60 }],
  }, data() as uPlot.AlignedData, target);
  return () => plot.setData(data() as uPlot.AlignedData);
}

const redraws: Array<() => void> = [];

async function tick(): Promise<void> {
  try {
    const r = await fetch('/metrics', { cache: 'no-store' });
    const samples = parseSamples(await r.text());
    scrapes++;
    const now = totalsOf(samples);
    record(now);
    showNumbers(now);
    showRefusals(samples);
    for (const redraw of redraws) redraw();
    el('status').textContent = `updated ${new Date().toLocaleTimeString()}`;
    await showPrincipals();
  } catch (err) {
    el('status').textContent = `cannot read metrics: ${(err as Error).message}`;
  }
}

function start(): void {
  redraws.push(
    chart('chart-open', 'Open connections', ['open'], () => [points.t, points.open]),
    chart('chart-handshakes', 'Handshakes per second', ['accepted', 'refused'], () => [points.t, points.accepted, points.refused]),
    chart('chart-messages', 'Messages per second', ['in', 'out'], () => [points.t, points.inRate, points.outRate]),
  );
  void tick();
  setInterval(() => { void tick(); }, PERIOD_MS);
}

start();
