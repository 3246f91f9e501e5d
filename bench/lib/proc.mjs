/**
 * What the kernel says about a process: CPU time (utime + stime, all threads)
 * from /proc/<pid>/stat and resident memory from /proc/<pid>/status.
 */
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let clockTicks = 0;

/** Clock ticks per second (USER_HZ), the unit of utime/stime in /proc/<pid>/stat. */
export function clkTck() {
  if (clockTicks === 0) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** Seconds of CPU (user + system, all threads) the process has used so far. */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / clkTck();
}

/**
 * Minor page faults of the process so far (all threads; field 10 of
 * /proc/<pid>/stat). A server that faults in fresh pages for its socket reads
 * pays for it in system time: at 256 KiB a faulting run's CPU per message is
 * several times a clean run's (bench/RESULTS.md, "Sixth session").
 */
export function minorFaults(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

/** Resident set size in KiB (VmRSS). */
export function rssKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/**
 * Scheduler statistics of the process's main thread (its event loop):
 * nanoseconds on a CPU and nanoseconds runnable but waiting for one. On a
 * shared machine, `waitNs` shows how much the server was held back by other
 * processes; busy + waiting ≈ 100 % of an interval means it always had work.
 */
export function schedstat(pid) {
  const [runNs, waitNs] = readFileSync(`/proc/${pid}/schedstat`, 'latin1').trim().split(' ').map(Number);
  return { runNs, waitNs };
}
