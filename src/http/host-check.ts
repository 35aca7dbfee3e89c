// The DNS-rebinding guard: which Host header names writes and the page answer to.
// The attack (issue 15 item 13): a page on rebind.attacker.example, opened in a browser on
// the trading host, re-points its name at 127.0.0.1. Its requests then come from loopback,
// with `Host: rebind.attacker.example` and a matching Origin, so they pass "writes from this
// host only" and CORS alike. A browser always sends the name it resolved as Host, so
// answering writes only for names that mean this service stops it.
// Names allowed: localhost and *.localhost (RFC 6761: never resolved by DNS), IP literals
// (v4, v6 in brackets: an IP origin cannot be rebound), the bind address, this machine's
// os.hostname(), and NEOLIGHT_ALLOWED_HOSTS.
// ? Plain reads are never checked: the execution router asks GET /meta/metrics under any
// name an operator chose, and refusing it would make it read "not paused" and trade.
import { hostname as osHostname } from "node:os";

/** What a Host header's name is allowed against. */
export interface HostCheck {
  /**
   * Whether `host` (a Host header, port and all; null when absent) names this service. A
   * request without Host is allowed: browsers always send one, so it is no rebinding.
   */
  allows(host: string | null): boolean;
}

export interface HostCheckOptions {
  /** NEOLIGHT_ALLOWED_HOSTS: exact names, compared without case. */
  allowed: readonly string[];
  /** NEOLIGHT_DASHBOARD_HOST (an IP literal or a name). Default: none. */
  bindHost?: string;
  /** This machine's name. Default: os.hostname(). */
  hostname?: string;
}

const IPV4 = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
const IPV6_BRACKETED = /^\[[0-9a-f:.]+(%[0-9a-z._~-]+)?\]$/;

/** "Example.COM." -> "example.com": names compare without case and without the root's dot. */
function normalise(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}

/** "[::1]:8100" -> "[::1]", "host:8100" -> "host", "host" -> "host". */
export function hostName(host: string): string {
  if (host.startsWith("[")) {
    const close = host.indexOf("]");
    return close === -1 ? host : host.slice(0, close + 1);
  }
  const colon = host.lastIndexOf(":");
  return colon === -1 ? host : host.slice(0, colon);
}

export function createHostCheck({ allowed, bindHost, hostname = osHostname() }: HostCheckOptions): HostCheck {
  const names = new Set([...allowed, hostname, ...(bindHost === undefined ? [] : [bindHost])].map(normalise));
  return {
    allows(host) {
      if (host === null) return true;
      const name = normalise(hostName(host));
      return (
        name === "localhost" ||
        name.endsWith(".localhost") ||
        IPV4.test(name) ||
        IPV6_BRACKETED.test(name) ||
        names.has(name)
      );
    },
  };
}
