// MCP Tasks from the TypeScript side: @modelcontextprotocol/client (v2, protocol 2026-07-28)
// with @modelcontextprotocol/ext-tasks driving one task to completion and cancelling another.
//
// The v2 SDK Client has no public raw request path for 2026 task traffic, so ext-tasks
// needs a `rawDispatch`: this script's is a plain fetch that sends one JSON-RPC request with
// the 2026 routing headers (MCP-Protocol-Version, Mcp-Method, and Mcp-Name = the tool name
// on tools/call, the taskId on tasks/*) and reads the JSON or SSE answer.
//
// Usage: node tasks_check.mjs     Environment: LLMC_GATEWAY_URL (…/mcp), LLMC_TOKEN.
// Prints one JSON line {completed: {...}, cancelled: {...}}; exit 0 when the first task
// completed with the reply and the second ended cancelled, 1 when not, 2 on a usage or
// connection problem.

import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { createTaskSessionFromClient } from "@modelcontextprotocol/ext-tasks/client";

const url = process.env.LLMC_GATEWAY_URL;
const token = process.env.LLMC_TOKEN;
if (!url || !token) {
  console.error("usage: LLMC_GATEWAY_URL=... LLMC_TOKEN=... node tasks_check.mjs");
  process.exit(2);
}
const VERSION = "2026-07-28";
const CLIENT_INFO = { name: "llm-caller-uat-tasks", version: "1.0.0" };
const ASK_FOR_TASK = { "llm-caller/task": true }; // the gateway's documented hint
let nextId = 1;

function routingName(request) {
  const params = request.params ?? {};
  if (request.method === "tools/call") return params.name;
  if (String(request.method).startsWith("tasks/")) return params.taskId;
  return undefined;
}

async function rawDispatch(request, options = {}) {
  const body = { jsonrpc: "2.0", id: nextId++, ...request };
  const headers = {
    Authorization: `Bearer ${token}`,
    "Content-Type": "application/json",
    Accept: "application/json, text/event-stream",
    "MCP-Protocol-Version": VERSION,
    "Mcp-Method": request.method,
    ...(options.context?.headers ?? {}),
  };
  const name = routingName(request);
  if (typeof name === "string") headers["Mcp-Name"] = name;
  const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body), signal: options.signal });
  const text = await response.text();
  const data = text.startsWith("event:") || text.startsWith("data:")
    ? text.split("\n").filter((line) => line.startsWith("data: ")).map((line) => line.slice(6)).pop()
    : text;
  const message = JSON.parse(data);
  return message.error ? { kind: "error", error: message.error } : { kind: "result", result: message.result };
}

async function openSession() {
  const client = new Client(CLIENT_INFO, { versionNegotiation: { mode: { pin: VERSION } } });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  const session = createTaskSessionFromClient(client, {
    endpointId: "llm-caller-uat",
    rawDispatch,
    v2RequestFraming: { protocolVersion: VERSION, clientInfo: CLIENT_INFO, clientCapabilities: {} },
  });
  return { client, session };
}

async function completeOne(session) {
  const execution = await session.callTool("chatStream", { prompt: "tasks from TypeScript" },
    { metadata: ASK_FOR_TASK });
  const statuses = [];
  const { outcome } = await execution.settle({
    onEvent: (event) => { if (event.type === "task") statuses.push(event.task.status); },
  });
  const text = outcome.status === "completed" ? outcome.result?.structuredContent?.text : undefined;
  return { kind: execution.kind, status: outcome.status, statuses, text };
}

async function cancelOne(session) {
  const prompt = Array.from({ length: 100 }, () => "a").join(" ");
  const execution = await session.callTool("chatStream", { prompt }, { metadata: ASK_FOR_TASK });
  await new Promise((resolve) => setTimeout(resolve, 500));
  await execution.cancel();
  const outcome = await execution.result();
  return { kind: execution.kind, status: outcome.status };
}

async function main() {
  let opened;
  try {
    opened = await openSession();
  } catch (error) {
    console.error(`cannot open a task session: ${error}`);
    process.exit(2);
  }
  const { client, session } = opened;
  try {
    const completed = await completeOne(session);
    const cancelled = await cancelOne(session);
    console.log(JSON.stringify({ completed, cancelled }));
    const ok = completed.kind === "task" && completed.status === "completed"
      && typeof completed.text === "string" && completed.text.includes("tasks from TypeScript")
      && cancelled.kind === "task" && cancelled.status === "cancelled";
    process.exitCode = ok ? 0 : 1;
  } finally {
    await session.close();
    await client.close();
  }
}

main().catch((error) => {
  console.error(error?.stack ?? String(error));
  process.exit(2);
});
