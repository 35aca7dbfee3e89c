// The DNS-rebinding guard (issue 15 item 13): writes and the page answer only host names
// that mean this service; plain reads answer any name, because the execution router may use
// any and a refusal would read as "not paused". Through app.handle, from loopback.
import { describe, expect, test } from "bun:test";
import { hostname } from "node:os";
import { createHostCheck } from "../../src/http/host-check";
import { fixture, get, logged, startApp, type TestApp } from "../helpers";

const ATTACKER = "rebind.attacker.example";
const BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

function paused(t: TestApp, host: string): Promise<Response> {
  return t.app.handle(
    new Request("http://localhost/meta/metrics", {
      method: "POST",
      headers: { host, origin: `http://${host}`, "content-type": "application/json" },
      body: JSON.stringify(fixture("meta_metrics_paused_post")),
    }),
  );
}

function page(t: TestApp, host: string): Promise<Response> {
  return t.app.handle(new Request("http://localhost/", { headers: { host, accept: BROWSER_ACCEPT } }));
}

describe("the Host header of writes and the page", () => {
  test("a rebound name from 127.0.0.1 with a matching Origin: 421 naming the option, nothing written, logged, counted", async () => {
    await using t = await startApp();
    const before = (await get(t.app, "/meta/metrics")).body.guardian;
    const res = await paused(t, `${ATTACKER}:8100`);
    expect(res.status).toBe(421);
    expect(await res.json()).toEqual({
      error: expect.stringMatching(
        new RegExp(`^host name "${ATTACKER.replaceAll(".", "\\.")}" is not one .*NEOLIGHT_ALLOWED_HOSTS`),
      ),
      code: 421,
    });
    expect((await get(t.app, "/meta/metrics")).body.guardian).toEqual(before);
    expect(logged(t.log, "request refused")).toEqual([
      expect.objectContaining({ reason: "host name not allowed", status: 421, host: ATTACKER, path: "/meta/metrics" }),
    ]);
    expect((await get(t.app, "/status")).body.security).toMatchObject({ misdirected: 1 });
  });

  test("the page under a rebound name: 421 in the error shape; under localhost: the page", async () => {
    await using t = await startApp();
    const refused = await page(t, ATTACKER);
    expect(refused.status).toBe(421);
    expect(refused.headers.get("content-type")).toStartWith("application/json");
    expect(await refused.json()).toMatchObject({ code: 421 });
    const served = await page(t, "localhost:8100");
    expect(served.status).toBe(200);
    expect(served.headers.get("content-type")).toStartWith("text/html");
  });

  test.each([
    ["localhost with a port", "localhost:8100"],
    ["a .localhost name", "dash.localhost"],
    ["localhost in capitals with the root's dot", "LOCALHOST."],
    ["an IPv4 literal", "127.0.0.1:8100"],
    ["a LAN IPv4 literal", "192.168.1.20"],
    ["a bracketed IPv6 literal", "[::1]:8100"],
    ["a scoped IPv6 literal", "[fe80::1%eth0]"],
    ["this machine's name", hostname()],
    ["a name in NEOLIGHT_ALLOWED_HOSTS", "Dash.Example:443"],
  ])("%s is allowed (%s), where a rebound name is not", async (_name, host) => {
    await using t = await startApp({ env: { NEOLIGHT_ALLOWED_HOSTS: "dash.example" } });
    expect([(await paused(t, host)).status, (await page(t, host)).status, (await paused(t, ATTACKER)).status]).toEqual([
      200, 200, 421,
    ]);
  });

  test("the bind address, when it is a name, is allowed", () => {
    const check = createHostCheck({ allowed: [], bindHost: "dash.internal", hostname: "box" });
    expect([check.allows("dash.internal:8100"), check.allows("box"), check.allows("other.internal")]).toEqual([
      true,
      true,
      false,
    ]);
  });

  test.each([
    ["a name that only looks like an IP", "127.0.0.1.nip.io"],
    ["a suffix of an allowed name", "evil-dash.example"],
    ["an allowed name as a subdomain", "dash.example.attacker.example"],
    ["localhost as a prefix", "localhost.attacker.example"],
  ])("%s is refused (%s)", async (_name, host) => {
    await using t = await startApp({ env: { NEOLIGHT_ALLOWED_HOSTS: "dash.example" } });
    expect((await paused(t, host)).status).toBe(421);
  });
});

describe("plain reads answer under any name", () => {
  test.each(["/meta/metrics", "/health", "/status", "/meta/regime", "/"])(
    "GET %s (a JSON client) under the Host a write is refused for is 200: the router must never read a refusal",
    async (path) => {
      await using t = await startApp();
      expect((await paused(t, ATTACKER)).status).toBe(421);
      const res = await t.app.handle(new Request(`http://localhost${path}`, { headers: { host: ATTACKER } }));
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toStartWith("application/json");
    },
  );
});
