// Does a TypeScript SDK client over `llm-caller stdio` receive every chatStream delta?
//
// Launches the STDIO front end through the SDK's StdioClientTransport, calls chatStream
// RUNS times with an onprogress handler and compares, per call, the deltas the handler
// saw with the result's text. A client that drops its progress handler when the result
// arrives loses the last delta whenever the two come in one read.
//
// Usage: node stdio_progress_check.mjs v1|v2 RUNS COMMAND [ARGS...]
// Environment: LLMC_TOKEN, LLMC_GATEWAY_URL (passed on to the command, which runs in this
// process's working folder).
// Prints one JSON line {sdk, runs, lost, short: [...]}; exit 0 when nothing was lost,
// 1 when a delta was lost, 2 on a usage or connection problem.

const [sdk, runsText, command, ...args] = process.argv.slice(2);
const runs = Number.parseInt(runsText ?? "", 10);
if (!["v1", "v2"].includes(sdk) || !(runs > 0) || !command) {
  console.error("usage: node stdio_progress_check.mjs v1|v2 RUNS COMMAND [ARGS...]");
  process.exit(2);
}

// v1 is @modelcontextprotocol/sdk; v2 split the client into @modelcontextprotocol/client.
async function openClient() {
  const env = {
    PATH: process.env.PATH ?? "",
    LLMC_TOKEN: process.env.LLMC_TOKEN ?? "",
    LLMC_GATEWAY_URL: process.env.LLMC_GATEWAY_URL ?? "",
  };
  const info = { name: `stdio-progress-check-${sdk}`, version: "1.0.0" };
  if (sdk === "v1") {
    const { Client } = await import("@modelcontextprotocol/sdk/client/index.js");
    const { StdioClientTransport } = await import("@modelcontextprotocol/sdk/client/stdio.js");
    const client = new Client(info);
    await client.connect(new StdioClientTransport({ command, args, env, cwd: process.cwd(), stderr: "inherit" }));
    return {
      client,
      call: (params, onprogress) => client.callTool(params, undefined, { onprogress }),
    };
  }
  const { Client } = await import("@modelcontextprotocol/client");
  const { StdioClientTransport } = await import("@modelcontextprotocol/client/stdio");
  const client = new Client(info);
  await client.connect(new StdioClientTransport({ command, args, env, cwd: process.cwd(), stderr: "inherit" }));
  return { client, call: (params, onprogress) => client.callTool(params, { onprogress }) };
}

async function main() {
  const { client, call } = await openClient();
  const short = [];
  try {
    for (let run = 0; run < runs; run += 1) {
      const deltas = [];
      const seen = [];
      const result = await call(
        { name: "chatStream", arguments: { prompt: `progress check ${run}` } },
        (progress) => { deltas.push(progress.message ?? ""); seen.push(progress.progress); },
      );
      const text = result.structuredContent?.text;
      if (result.isError || typeof text !== "string") {
        throw new Error(`chatStream failed: ${JSON.stringify(result.content)}`);
      }
      if (deltas.join("") !== text) {
        short.push({ run, seen, chunks: result.structuredContent.chunks });
      }
    }
  } finally {
    await client.close();
  }
  console.log(JSON.stringify({ sdk, runs, lost: short.length, short }));
  return short.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`stdio_progress_check: ${error?.message ?? error}`);
    process.exit(2);
  },
);
