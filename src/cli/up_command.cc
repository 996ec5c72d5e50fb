#include "cli/up_command.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>

#include "api/api_server.h"
#include "autoscale/duration.h"
#include "autoscale/kpa.h"
#include "cli/control_plane.h"
#include "cli/state_dir.h"
#include "common/logging.h"

namespace quiver {
namespace {

namespace fs = std::filesystem;

struct UpFlags {
  std::string state_dir;
  std::string api_address = "127.0.0.1";
  int api_port = kDefaultApiPort;
  std::string gateway_address = "0.0.0.0";
  int gateway_port = 8080;
  std::string domain = "example.com";
  bool controllers = true;
  std::string api_token;
  std::string api_token_file;
  std::string log_level = "info";
  std::string log_format = "text";
  // Knative's cluster-wide config-autoscaler values (revisions override some by annotation).
  std::string stable_window = "60s";
  std::string scale_to_zero_grace_period = "30s";
  bool enable_scale_to_zero = true;
  std::string autoscaler_tick = "2s";
};

// A `quiver up` duration flag in Go's syntax, within [min, max].
StatusOr<std::chrono::milliseconds> DurationFlag(const std::string& flag, const std::string& text,
                                                 std::chrono::milliseconds min,
                                                 std::chrono::milliseconds max) {
  auto d = autoscale::ParseGoDuration(text);
  if (!d.ok()) return InvalidArgument(flag + ": " + d.status().message());
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  if (ms < min || ms > max) {
    return InvalidArgument(flag + ": expected a duration between " +
                           autoscale::FormatDuration(min) + " and " +
                           autoscale::FormatDuration(max) + ", got " + text);
  }
  return ms;
}

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  return s.substr(start);
}

StatusOr<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return InvalidArgument("--api-token-file " + path + ": cannot be read");
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  token = Trim(std::move(token));
  if (token.empty()) return InvalidArgument("--api-token-file " + path + ": the file is empty");
  return token;
}

// Writes `content` to `path` atomically (a temporary file renamed over it) with `mode`.
Status WriteFileAtomically(const std::string& path, const std::string& content, mode_t mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Internal("cannot write " + tmp + ": " + std::strerror(errno));
  bool ok = ::fchmod(fd, mode) == 0 &&
            ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return Internal("cannot write " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

std::string RandomToken() {
  std::random_device rd;  // /dev/urandom
  std::string out;
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) {
    unsigned byte = rd() & 0xff;
    out += kHex[byte >> 4];
    out += kHex[byte & 0xf];
  }
  return out;
}

// Decides the API token: from --api-token, --api-token-file, or (for a non-loopback listen
// address only) the token kept in the state dir, made on first use. The token in use is kept
// in <state-dir>/api.token (0600) so that the CLI on this machine finds it.
StatusOr<std::string> ResolveToken(const UpFlags& f, const std::string& state_dir) {
  std::string token_path = state_dir + "/" + kApiTokenFile;
  std::string token = f.api_token;
  if (token.empty() && !f.api_token_file.empty()) {
    QUIVER_ASSIGN_OR_RETURN(token, ReadSecretFile(f.api_token_file));
  }
  if (token.empty() && !api::IsLoopbackAddress(f.api_address)) {
    if (fs::exists(token_path)) {
      auto kept = ReadSecretFile(token_path);
      if (kept.ok()) token = *kept;
    }
    if (token.empty()) {
      token = RandomToken();
      spdlog::info("the API listens on {}, so it needs a token: made one in {}", f.api_address,
                   token_path);
    }
  }
  if (token.empty()) {
    std::error_code ec;
    fs::remove(token_path, ec);  // a stale token from an earlier run would only mislead
    return token;
  }
  QUIVER_RETURN_IF_ERROR(WriteFileAtomically(token_path, token + "\n", 0600));
  return token;
}

int Fail(const Status& s) {
  std::cerr << "error: " << s.message() << "\n";
  return 1;
}

int RunUp(const UpFlags& f) {
  if (Status s = InitLogging(f.log_level, f.log_format); !s.ok()) return Fail(s);
  if (f.api_port < 0 || f.api_port > 65535) {
    return Fail(InvalidArgument("--api-port must be 0..65535, got " + std::to_string(f.api_port)));
  }
  std::string state_dir = ResolveStateDir(f.state_dir);
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  if (ec) return Fail(InvalidArgument("--state-dir " + state_dir + ": " + ec.message()));
  ::chmod(state_dir.c_str(), 0700);

  // One daemon per state dir; the kernel drops the lock when the process dies, even by kill -9.
  std::string lock_path = state_dir + "/quiver.lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    return Fail(FailedPrecondition("another `quiver up` is using the state dir " + state_dir +
                                   " (" + lock_path + " is locked)"));
  }

  auto token = ResolveToken(f, state_dir);
  if (!token.ok()) return Fail(token.status());

  // Signals are taken by one thread with sigwait; every thread started later inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ControlPlaneOptions options;
  options.state_dir = state_dir;
  options.api.host = f.api_address;
  options.api.port = static_cast<uint16_t>(f.api_port);
  options.api.handler.token = *token;
  if (f.gateway_port < 0 || f.gateway_port > 65535) {
    return Fail(InvalidArgument("--gateway-port must be 0..65535, got " +
                                std::to_string(f.gateway_port)));
  }
  options.gateway_host = f.gateway_address;
  options.gateway_port = static_cast<uint16_t>(f.gateway_port);
  options.domain = f.domain;
  options.controllers = f.controllers;
  {
    using std::chrono::milliseconds;
    using std::chrono::hours;
    auto window = DurationFlag("--stable-window", f.stable_window, milliseconds(6'000), hours(1));
    if (!window.ok()) return Fail(window.status());
    if (window->count() % 1000 != 0) {
      return Fail(InvalidArgument("--stable-window: expected whole seconds (Knative's rule), got " +
                                  f.stable_window));
    }
    auto grace = DurationFlag("--scale-to-zero-grace-period", f.scale_to_zero_grace_period,
                              milliseconds(1), hours(1));
    if (!grace.ok()) return Fail(grace.status());
    auto tick = DurationFlag("--autoscaler-tick", f.autoscaler_tick, milliseconds(100),
                             milliseconds(60'000));
    if (!tick.ok()) return Fail(tick.status());
    options.kpa_defaults.stable_window = *window;
    // Knative's panic window is 10% of the stable window.
    options.kpa_defaults.panic_window = std::max(milliseconds(1000), *window / 10);
    options.kpa_defaults.scale_to_zero_grace = *grace;
    options.kpa_defaults.enable_scale_to_zero = f.enable_scale_to_zero;
    options.autoscaler.tick_interval = *tick;
    // The cluster-wide values must make a valid configuration on their own.
    if (auto check = autoscale::ResolveConfig({}, options.kpa_defaults); !check.ok()) {
      return Fail(check.status().WithPrefix("quiver up autoscaler settings"));
    }
  }
  auto plane = ControlPlane::Create(std::move(options));
  if (!plane.ok()) return Fail(plane.status());

  // Clients on this machine reach a wildcard listen address through loopback.
  std::string host = f.api_address;
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  std::string url = "http://" + host + ":" + std::to_string((*plane)->api_port());
  std::string addr_path = state_dir + "/" + kApiAddrFile;
  if (Status s = WriteFileAtomically(addr_path, url + "\n", 0644); !s.ok()) return Fail(s);

  (*plane)->Start();
  spdlog::info("state in {}; API {} ({})", state_dir, url,
               token->empty() ? "no token needed on loopback" : "bearer token required");
  std::cout << "quiver control plane API listening on " << url << std::endl;
  if (f.controllers) {
    std::string gw_host = f.gateway_address == "0.0.0.0" ? "127.0.0.1" : f.gateway_address;
    std::cout << "quiver gateway listening on http://" << gw_host << ":"
              << (*plane)->gateway_port() << " (services at http://{name}.{namespace}."
              << f.domain << " by Host header, or http://" << gw_host << ":"
              << (*plane)->gateway_port() << "/serving/{namespace}/{name}/...)" << std::endl;
  }

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received signal {}; stopping", sig);
  (*plane)->Stop();
  fs::remove(addr_path, ec);
  plane->reset();
  ::close(lock_fd);
  spdlog::info("stopped");
  return 0;
}

}  // namespace

void AddUpCommand(CLI::App& app) {
  auto flags = std::make_shared<UpFlags>();
  CLI::App* cmd = app.add_subcommand(
      "up",
      "Run the local control plane: the KServe resource API, durable state, the reconciler "
      "that runs replicas, and the gateway");
  cmd->add_option("--state-dir", flags->state_dir,
                  "Directory for state.db, api.addr, api.token (default $QUIVER_STATE_DIR or "
                  "~/.quiver)");
  cmd->add_option("--api-address", flags->api_address,
                  "Address the API listens on; any non-loopback address requires a token")
      ->capture_default_str();
  cmd->add_option("--api-port", flags->api_port, "API port (0 picks a free one)")
      ->capture_default_str();
  cmd->add_option("--gateway-address", flags->gateway_address,
                  "Address the gateway (the services' front door) listens on")
      ->capture_default_str();
  cmd->add_option("--gateway-port", flags->gateway_port,
                  "Gateway port, KServe's ingress port (0 picks a free one)")
      ->capture_default_str();
  cmd->add_option("--domain", flags->domain,
                  "Domain of service hosts: http://{name}.{namespace}.{domain}")
      ->capture_default_str();
  cmd->add_option("--controllers", flags->controllers,
                  "Run the reconciler, replicas and gateway; false serves only the API and the "
                  "state (an API server without its controllers)")
      ->capture_default_str();
  cmd->add_option("--api-token", flags->api_token,
                  "Bearer token the API requires (made automatically for non-loopback "
                  "addresses)");
  cmd->add_option("--api-token-file", flags->api_token_file, "File holding the bearer token")
      ->check(CLI::ExistingFile);
  cmd->add_option("--stable-window", flags->stable_window,
                  "Knative's stable-window: the autoscaler's averaging window (6s..1h; a "
                  "revision's autoscaling.knative.dev/window overrides it)")
      ->capture_default_str();
  cmd->add_option("--scale-to-zero-grace-period", flags->scale_to_zero_grace_period,
                  "How long a revision with minReplicas 0 stays up after its traffic stops")
      ->capture_default_str();
  cmd->add_option("--enable-scale-to-zero", flags->enable_scale_to_zero,
                  "false keeps at least one replica of every revision")
      ->capture_default_str();
  cmd->add_option("--autoscaler-tick", flags->autoscaler_tick,
                  "How often the autoscaler decides (Knative: 2s)")
      ->capture_default_str();
  cmd->add_option("--log-level", flags->log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  cmd->add_option("--log-format", flags->log_format, "text|json")->capture_default_str();
  cmd->callback([flags] { throw CLI::RuntimeError(RunUp(*flags)); });
}

}  // namespace quiver
