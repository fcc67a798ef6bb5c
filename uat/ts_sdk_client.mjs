// UAT client 3: the official MCP TypeScript SDK (@modelcontextprotocol/sdk, the v1 line) over
// streamable HTTP. One process per call, as an independent tool would connect.
//
// Reads one JSON object on stdin (so the token never appears on a command line):
//   {"url": ..., "token": ..., "method": "tools/call"|"tools/list", "tool": ..., "arguments": {...}}
// Lists the tools first, as a client does before calling one, so the SDK checks each
// result's structuredContent against the tool's outputSchema. A call passes an onprogress
// handler, so progress notifications are requested and recorded in arrival order.
//
// Prints one JSON line: {"result": ..., "progress": [...], "call_ms": n} on success, or
// {"failure": "...", "auth_rejected": bool} when the client could not complete the call.
// Exit 0 in both cases (the Python side judges); 2 only when the input is unusable.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const CALL_TIMEOUT_MS = 120_000;

async function readInput() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  if (typeof input.url !== "string" || typeof input.token !== "string" || typeof input.method !== "string") {
    throw new Error("stdin needs url, token and method");
  }
  return input;
}

function describe(error) {
  const code = error?.code === undefined ? "" : ` (code ${error.code})`;
  return `${error?.name ?? "Error"}: ${error?.message ?? String(error)}${code}`.slice(0, 500);
}

async function observe(input, statuses) {
  const transport = new StreamableHTTPClientTransport(new URL(input.url), {
    requestInit: { headers: { Authorization: `Bearer ${input.token}` } },
    fetch: async (url, init) => {
      const response = await fetch(url, init);
      statuses.push(response.status);
      return response;
    },
  });
  const client = new Client({ name: "llm-caller-uat-typescript-sdk", version: "1.0.0" });
  await client.connect(transport);
  try {
    const listedAt = performance.now();
    const listed = await client.listTools();
    if (input.method === "tools/list") {
      return { result: listed, progress: [], call_ms: performance.now() - listedAt };
    }
    const progress = [];
    const started = performance.now();
    const result = await client.callTool(
      { name: input.tool, arguments: input.arguments ?? {} },
      undefined,
      { onprogress: (note) => progress.push(note.message ?? ""), timeout: CALL_TIMEOUT_MS },
    );
    return { result, progress, call_ms: performance.now() - started };
  } finally {
    await client.close();
  }
}

async function main() {
  let input;
  try {
    input = await readInput();
  } catch (error) {
    console.error(`ts_sdk_client: ${describe(error)}`);
    return 2;
  }
  const statuses = [];
  try {
    console.log(JSON.stringify(await observe(input, statuses)));
  } catch (error) {
    console.log(JSON.stringify({ failure: describe(error), auth_rejected: statuses.includes(401) }));
  }
  return 0;
}

main().then((code) => process.exit(code));
