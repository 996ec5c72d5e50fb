// `quiver router`: one InferenceGraph served by graph::GraphRouter behind an http::HttpServer,
// as KServe's router pod serves it (cmd/router): port 8080, the graph at every path, /readyz and
// the v2 health routes, PROPAGATE_HEADERS, SIGTERM → readiness off, then drain.
#include "cli/router_command.h"

#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "common/logging.h"
#include "common/system.h"
#include "graph/http_url.h"
#include "graph/router.h"
#include "http/server.h"
#include "spec/inference_graph.h"
#include "spec/resource.h"

namespace quiver {
namespace {

// KServe's in-cluster address of an InferenceService (status.address.url) plus the V1 predict
// path, which is what its controller resolves a serviceName to for a v1 predictor named after
// the service.
constexpr const char* kDefaultServiceTemplate =
    "http://{name}.{namespace}.svc.cluster.local/v1/models/{name}:predict";

struct RouterFlags {
  std::string graph_file;
  std::string graph_json;
  std::string name = "graph";
  std::string namespace_name;
  std::string host = "0.0.0.0";
  int http_port = 8080;
  std::vector<std::string> services;
  std::string service_url_template = kDefaultServiceTemplate;
  std::vector<std::string> propagate_headers;
  int threads = 0;
  double drain_timeout_s = 30;
  double shutdown_delay_s = 0;
  std::string log_level = "info";
  std::string log_format = "text";
};

StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("--graph: cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The one InferenceGraph of --graph FILE, or of --graph-json (KServe's flag: the spec alone).
StatusOr<spec::InferenceGraph> LoadGraph(const RouterFlags& f) {
  if (f.graph_file.empty() == f.graph_json.empty()) {
    return InvalidArgument("give exactly one of --graph FILE and --graph-json JSON");
  }
  std::vector<spec::Manifest> manifests;
  if (!f.graph_json.empty()) {
    spec::Json spec_doc = spec::Json::parse(f.graph_json, nullptr, /*allow_exceptions=*/false);
    if (!spec_doc.is_object()) {
      return InvalidArgument("--graph-json: expected the InferenceGraph's spec as a JSON object");
    }
    spec::Json doc = {{"apiVersion", "serving.kserve.io/v1alpha1"},
                      {"kind", "InferenceGraph"},
                      {"metadata", {{"name", f.name}}},
                      {"spec", std::move(spec_doc)}};
    manifests.push_back(spec::Manifest{std::move(doc), "--graph-json"});
  } else {
    QUIVER_ASSIGN_OR_RETURN(std::string text, ReadFile(f.graph_file));
    QUIVER_ASSIGN_OR_RETURN(manifests, spec::ParseManifests(text, f.graph_file));
  }
  std::optional<spec::InferenceGraph> found;
  for (spec::Manifest& m : manifests) {
    if (m.doc.value("kind", "") != "InferenceGraph") continue;
    if (found) {
      return InvalidArgument(f.graph_file + ": holds more than one InferenceGraph; a router "
                                            "serves one");
    }
    Status valid = spec::DefaultAndValidate(
        m.doc, f.namespace_name.empty() ? std::string("default") : f.namespace_name);
    if (!valid.ok()) return valid.WithPrefix(m.source);
    QUIVER_ASSIGN_OR_RETURN(found, spec::InferenceGraphFromJson(m.doc));
  }
  if (!found) return InvalidArgument(f.graph_file + ": no InferenceGraph document in it");
  return *found;
}

std::string Replace(std::string text, std::string_view what, std::string_view with) {
  for (size_t at = text.find(what); at != std::string::npos;
       at = text.find(what, at + with.size())) {
    text.replace(at, what.size(), with);
  }
  return text;
}

// serviceName → URL: --service NAME=URL first (a URL without a path gets the V1 predict path
// of a model named NAME), else the template.
StatusOr<std::function<StatusOr<std::string>(const std::string&)>> MakeResolver(
    const RouterFlags& f, const std::string& namespace_name) {
  std::map<std::string, std::string> fixed;
  for (const std::string& entry : f.services) {
    size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size()) {
      return InvalidArgument("--service: expected NAME=URL, got \"" + entry + "\"");
    }
    std::string name = entry.substr(0, eq);
    std::string url = entry.substr(eq + 1);
    auto parsed = graph::ParseHttpUrl(url);
    if (!parsed.ok()) return parsed.status().WithPrefix("--service " + name);
    if (parsed->target == "/" && url.find('/', 7) == std::string::npos) {
      url += "/v1/models/" + name + ":predict";
    }
    fixed[name] = url;
  }
  std::string tmpl = f.service_url_template;
  auto sample = graph::ParseHttpUrl(Replace(Replace(tmpl, "{name}", "x"), "{namespace}", "y"));
  if (!sample.ok()) return sample.status().WithPrefix("--service-url-template");
  return std::function<StatusOr<std::string>(const std::string&)>(
      [fixed = std::move(fixed), tmpl, namespace_name](const std::string& name)
          -> StatusOr<std::string> {
        if (auto it = fixed.find(name); it != fixed.end()) return it->second;
        return Replace(Replace(tmpl, "{name}", name), "{namespace}", namespace_name);
      });
}

std::vector<std::string> SplitComma(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

int RunRouter(RouterFlags f) {
  Status s = InitLogging(f.log_level, f.log_format);
  if (!s.ok()) {
    std::fprintf(stderr, "quiver router: %s\n", s.message().c_str());
    return 2;
  }
  auto fail = [](const Status& status) {
    std::fprintf(stderr, "quiver router: %s\n", status.message().c_str());
    return 2;
  };
  auto graph = LoadGraph(f);
  if (!graph.ok()) return fail(graph.status());
  std::string namespace_name = !f.namespace_name.empty() ? f.namespace_name
                               : !graph->metadata.namespace_name.empty()
                                   ? graph->metadata.namespace_name
                                   : std::string("default");
  auto resolver = MakeResolver(f, namespace_name);
  if (!resolver.ok()) return fail(resolver.status());
  // KServe reads the patterns from PROPAGATE_HEADERS (comma-separated); flags add to them.
  std::vector<std::string> patterns = f.propagate_headers;
  if (const char* env = std::getenv("PROPAGATE_HEADERS")) {
    for (auto& p : SplitComma(env)) patterns.push_back(p);
  }
  int threads = f.threads > 0 ? f.threads : AvailableCpus();

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  graph::RouterOptions options;
  options.resolve_service = std::move(resolver).value();
  options.propagate_headers = patterns;
  options.threads = threads;
  auto router = graph::GraphRouter::Create(*graph, std::move(options));
  if (!router.ok()) return fail(router.status());
  std::shared_ptr<graph::GraphRouter> shared_router = std::move(router).value();

  http::ServerOptions server_options;
  server_options.host = f.host;
  server_options.port = static_cast<uint16_t>(f.http_port);
  server_options.io_threads = threads;
  server_options.read_timeout = std::chrono::seconds(graph->router_timeouts.server_read);
  server_options.idle_timeout = std::chrono::seconds(graph->router_timeouts.server_idle);
  server_options.drain_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(f.drain_timeout_s * 1000));
  auto server = http::HttpServer::Create(
      server_options, [shared_router](http::Request&& request, http::Responder responder) {
        shared_router->Handle(std::move(request), std::move(responder));
      });
  if (!server.ok()) {
    spdlog::error("{}", server.status().message());
    return 1;
  }
  std::shared_ptr<http::HttpServer> http = std::move(server).value();
  size_t service_steps = 0;
  for (const auto& [name, node] : graph->nodes) {
    for (const auto& step : node.steps) service_steps += step.service_name.empty() ? 0 : 1;
  }
  if (service_steps > 0) {
    spdlog::info("serviceName steps resolve to {} (namespace {}) unless --service names them",
                 f.service_url_template, namespace_name);
  }
  // Logged last: tests and scripts take this line to mean the router is up.
  spdlog::info("quiver router: graph \"{}\" ({} node(s)); HTTP server listening on {}:{}",
               graph->metadata.name, graph->nodes.size(), f.host, http->port());

  auto delay = std::chrono::milliseconds(static_cast<int64_t>(f.shutdown_delay_s * 1000));
  std::thread signal_thread([http, shared_router, &signals, delay] {
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("received signal {}; readiness off, draining in-flight requests", sig);
    shared_router->MarkNotReady();
    // On Kubernetes, endpoints need a moment to drop a pod that turned unready (KServe's router
    // waits 30 s); until then requests keep being served.
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    http->Shutdown();
  });
  http->Run();
  signal_thread.join();
  shared_router->Shutdown(std::chrono::milliseconds(0));
  auto stats = shared_router->stats();
  spdlog::info("stopped after {} graph request(s), {} answered with an error", stats.requests,
               stats.errors);
  return 0;
}

}  // namespace

void AddRouterCommand(CLI::App& app) {
  auto flags = std::make_shared<RouterFlags>();
  CLI::App* cmd = app.add_subcommand(
      "router", "Serve one InferenceGraph (what a Kubernetes deployment of a graph runs)");
  cmd->add_option("--graph", flags->graph_file,
                  "YAML or JSON file holding one InferenceGraph (other kinds are ignored)");
  cmd->add_option("--graph-json,--graph_json", flags->graph_json,
                  "The InferenceGraph's spec as JSON (KServe's router flag), instead of --graph");
  cmd->add_option("--name", flags->name, "Graph name with --graph-json")->capture_default_str();
  cmd->add_option("--namespace", flags->namespace_name,
                  "Namespace of the graph's services (default: the graph's, else default)");
  cmd->add_option("--host", flags->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--http-port,--http_port", flags->http_port, "HTTP port (0: any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--service", flags->services,
                  "NAME=URL: where serviceName NAME is (its full predict URL, or http://host:port "
                  "for /v1/models/NAME:predict); repeatable");
  cmd->add_option("--service-url-template", flags->service_url_template,
                  "URL of any other serviceName; {name} and {namespace} are replaced")
      ->capture_default_str();
  cmd->add_option("--propagate-header", flags->propagate_headers,
                  "Regular expression over header names to pass on to every step (as KServe's "
                  "PROPAGATE_HEADERS, which is read too); repeatable");
  cmd->add_option("--threads,--io-threads", flags->threads,
                  "I/O threads (0: one per CPU this process may use)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--drain-timeout", flags->drain_timeout_s,
                  "Seconds in-flight requests get to finish after SIGTERM")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--shutdown-delay", flags->shutdown_delay_s,
                  "Seconds between SIGTERM (readiness off) and the drain; KServe waits 30 on "
                  "Kubernetes")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--log-level", flags->log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  cmd->add_option("--log-format", flags->log_format, "text|json")->capture_default_str();
  cmd->callback([flags] { throw CLI::RuntimeError(RunRouter(*flags)); });
}

}  // namespace quiver
