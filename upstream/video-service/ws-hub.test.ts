import { describe, expect, it } from "vitest";
import { parseClientMessage, WsHub, type Sink } from "./ws-hub.ts";

class FakeSink implements Sink {
  readyState = 1;
  bufferedAmount = 0;
  readonly sent: string[] = [];
  send(data: string): void {
    this.sent.push(data);
  }
}

describe("WsHub.broadcast", () => {
  it("sends to clients of all streams and to subscribers of that stream only", () => {
    const hub = new WsHub();
    const all = new FakeSink();
    const a = new FakeSink();
    const b = new FakeSink();
    hub.add(all, null);
    hub.add(a, "A");
    hub.add(b, "B");
    expect(hub.broadcast("A", { type: "detections", stream_id: "A", frame: 1 })).toEqual({ sent: 2, dropped: 0 });
    expect(all.sent).toEqual(['{"type":"detections","stream_id":"A","frame":1}']);
    expect(a.sent).toHaveLength(1);
    expect(b.sent).toHaveLength(0);
  });

  it("drops frames for a client whose send queue is over the limit, and counts them", () => {
    const hub = new WsHub({ maxBufferedBytes: 1000 });
    const slow = new FakeSink();
    const fast = new FakeSink();
    const slowClient = hub.add(slow, null);
    hub.add(fast, null);
    slow.bufferedAmount = 5000;
    for (let i = 0; i < 10; i++) hub.broadcast("S", { frame: i });
    expect(slow.sent).toHaveLength(0);
    expect(fast.sent).toHaveLength(10);
    expect(slowClient.dropped).toBe(10);
    expect(hub.droppedTotal).toBe(10);
    expect(hub.droppedByStream.get("S")).toBe(10);
    // Once the client catches up it gets frames again.
    slow.bufferedAmount = 0;
    hub.broadcast("S", { frame: 10 });
    expect(slow.sent).toEqual(['{"frame":10}']);
    expect(slowClient.sent).toBe(1);
  });

  it("skips clients that are not open and forgets removed ones", () => {
    const hub = new WsHub();
    const closing = new FakeSink();
    closing.readyState = 2;
    const gone = new FakeSink();
    hub.add(closing, null);
    hub.remove(hub.add(gone, null));
    expect(hub.broadcast("S", {})).toEqual({ sent: 0, dropped: 0 });
    expect(hub.clients.size).toBe(1);
  });

  it("sends control messages to the subscribers of the stream and to all-stream clients", () => {
    const hub = new WsHub();
    const all = new FakeSink();
    const other = new FakeSink();
    hub.add(all, null);
    hub.add(other, "other");
    hub.notify("S", { type: "stream", state: "reconnecting" });
    expect(all.sent).toHaveLength(1);
    expect(other.sent).toHaveLength(0);
  });
});

describe("WsHub.closeSubscribers", () => {
  it("closes the clients of that stream only, with 1000 stream stopped", () => {
    const hub = new WsHub();
    const closed: [string, number, string][] = [];
    const sink = (name: string) => Object.assign(new FakeSink(), { close: (code: number, reason: string) => closed.push([name, code, reason]) });
    hub.add(sink("all"), null);
    hub.add(sink("mine"), "S");
    hub.add(sink("other"), "T");
    expect(hub.closeSubscribers("S")).toBe(1);
    expect(closed).toEqual([["mine", 1000, "stream stopped"]]);
    expect([...hub.clients].map((c) => c.streamId)).toEqual([null, "T"]);
  });
});

describe("parseClientMessage", () => {
  it.each([
    ['{"type":"subscribe","stream_id":"abc"}', { type: "subscribe", streamId: "abc" }],
    ['{"type":"subscribe","stream_id":null}', { type: "subscribe", streamId: null }],
    ['{"type":"subscribe"}', { type: "subscribe", streamId: null }],
    ['{"type":"unsubscribe"}', { type: "subscribe", streamId: null }],
    ['{"type":"ping"}', { type: "ping" }],
  ])("parses %s", (text, expected) => {
    expect(parseClientMessage(text)).toEqual(expected);
  });

  it.each([
    ["not json", /not JSON/],
    ["[1]", /JSON object/],
    ['{"type":"dance"}', /type must be/],
    ['{"type":"subscribe","stream_id":5}', /stream_id must be a string/],
  ])("rejects %s", (text, message) => {
    const parsed = parseClientMessage(text);
    expect("error" in parsed && parsed.error).toMatch(message);
  });
});
