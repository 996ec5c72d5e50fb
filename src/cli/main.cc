// The `quiver` binary: one executable, sub-commands per job.
#include <CLI/CLI.hpp>

#include "cli/bench_command.h"
#include "cli/render_command.h"
#include "cli/resource_commands.h"
#include "cli/router_command.h"
#include "cli/serve_command.h"
#include "cli/storage_initializer_command.h"
#include "cli/up_command.h"

int main(int argc, char** argv) {
  CLI::App app{"Quiver: a KServe-compatible model server"};
  app.require_subcommand(1);
  app.set_version_flag("--version", QUIVER_VERSION);
  quiver::AddServeCommand(app);
  quiver::AddBenchCommand(app);
  quiver::AddUpCommand(app);
  quiver::AddResourceCommands(app);
  quiver::AddRenderCommand(app);
  quiver::AddRouterCommand(app);
  quiver::AddStorageInitializerCommand(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
