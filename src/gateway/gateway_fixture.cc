// gateway_fixture: a gateway on a route table read from a JSON file, for integration tests
// while the control plane is not wired to the gateway. Prints "gateway listening on HOST:PORT"
// on stderr once serving; SIGHUP re-reads the file; SIGTERM/SIGINT drain and exit 0.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/logging.h"
#include "gateway/gateway.h"

namespace {

quiver::StatusOr<quiver::gateway::RouteTable> ReadRoutes(const std::string& path) {
  std::ifstream in(path);
  if (!in) return quiver::InvalidArgument("--routes: cannot read '" + path + "'");
  std::stringstream text;
  text << in.rdbuf();
  auto table = quiver::gateway::RouteTableFromJson(text.str());
  if (!table.ok()) return table.status().WithPrefix("--routes " + path);
  return table;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Gateway on a JSON route table (test fixture)"};
  std::string routes;
  std::string host = "127.0.0.1";
  int port = 0;
  int io_threads = 2;
  std::string domain = "example.com";
  std::string log_level = "info";
  app.add_option("--routes", routes, "route table JSON file")->required();
  app.add_option("--host", host, "address to listen on");
  app.add_option("--port", port, "port (0 picks a free one)")->check(CLI::Range(0, 65535));
  app.add_option("--io-threads", io_threads, "server I/O threads")->check(CLI::Range(1, 64));
  app.add_option("--domain", domain, "domain of {name}.{namespace}.{domain} hosts");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off");
  CLI11_PARSE(app, argc, argv);

  if (auto s = quiver::InitLogging(log_level, "text"); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 2;
  }
  // Signals are taken by one thread with sigwait; every other thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto table = ReadRoutes(routes);
  if (!table.ok()) {
    std::fprintf(stderr, "%s\n", table.status().ToString().c_str());
    return 2;
  }
  quiver::gateway::GatewayOptions options;
  options.server.host = host;
  options.server.port = static_cast<uint16_t>(port);
  options.server.io_threads = io_threads;
  options.domain = domain;
  auto gateway = quiver::gateway::Gateway::Create(options);
  if (!gateway.ok()) {
    std::fprintf(stderr, "%s\n", gateway.status().ToString().c_str());
    return 1;
  }
  auto& gw = **gateway;
  if (auto s = gw.SetRouteTable(std::move(table).value()); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 2;
  }
  std::thread signal_thread([&] {
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (sig == SIGHUP) {
        auto reloaded = ReadRoutes(routes);
        auto s = reloaded.ok() ? gw.SetRouteTable(std::move(reloaded).value()) : reloaded.status();
        std::fprintf(stderr, "%s\n", s.ok() ? "routes reloaded" : s.ToString().c_str());
        continue;
      }
      gw.Shutdown();
      return;
    }
  });
  std::fprintf(stderr, "gateway listening on %s:%u\n", host.c_str(), gw.port());
  std::fflush(stderr);
  gw.Run();
  signal_thread.join();
  return 0;
}
