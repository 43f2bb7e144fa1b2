import { runIndexCommand, INDEX_USAGE } from "./indexCommand.ts";
import { UsageError } from "./args.ts";
import { runPrecomputeCommand, PRECOMPUTE_USAGE } from "./precompute.ts"; // ---- precompute

const USAGE = `usage: lindi <command> [options]

commands:
${INDEX_USAGE}
${PRECOMPUTE_USAGE}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "index":
      return runIndexCommand(rest);
    case "precompute": // ---- precompute
      return runPrecomputeCommand(rest);
    case undefined:
    case "-h":
    case "--help":
    case "help":
      process.stdout.write(USAGE + "\n");
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError) {
      process.stderr.write(`lindi: ${e.message}\n\n${USAGE}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`lindi: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    }
  },
);
