// `quiver render -f FILE|DIR|- [--mode standard|knative] [-o yaml|json]`: reads manifests the way
// `apply -f` does, renders them (render/render.h) and prints the objects on stdout. Errors go to
// stderr, each naming the document and the field, and the exit code is 1.
#include "cli/render_command.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>

#include "render/render.h"
#include "spec/resource.h"

#ifndef QUIVER_VERSION
#define QUIVER_VERSION "0.0.0"
#endif

namespace quiver {
namespace {

namespace fs = std::filesystem;

struct RenderFlags {
  std::vector<std::string> files;
  std::string mode;
  std::string output = "yaml";
  std::string image = std::string("quiver:") + QUIVER_VERSION;
  std::string ns = "default";
  std::string gateway = "kserve/kserve-ingress-gateway";
  std::string domain = "example.com";
  std::string prometheus_url = "http://prometheus-operated.monitoring.svc:9090";
  std::string storage_secret;
  std::vector<std::string> previous_revisions;
};

StatusOr<std::string> ReadText(std::istream& in) {
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text;
}

// Files, directories (their .yaml/.yml/.json files in name order) and "-" for stdin.
StatusOr<std::vector<spec::Manifest>> ReadInputs(const std::vector<std::string>& files) {
  std::vector<spec::Manifest> out;
  for (const std::string& file : files) {
    std::vector<std::pair<std::string, std::string>> sources;
    if (file == "-") {
      QUIVER_ASSIGN_OR_RETURN(std::string text, ReadText(std::cin));
      sources.emplace_back("<stdin>", std::move(text));
    } else if (fs::is_directory(file)) {
      std::vector<fs::path> paths;
      for (const auto& entry : fs::directory_iterator(file)) {
        std::string ext = entry.path().extension().string();
        if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml" || ext == ".json")) {
          paths.push_back(entry.path());
        }
      }
      std::sort(paths.begin(), paths.end());
      if (paths.empty()) {
        return InvalidArgument(file + ": no .yaml, .yml or .json files in this directory");
      }
      for (const fs::path& path : paths) {
        std::ifstream in(path);
        QUIVER_ASSIGN_OR_RETURN(std::string text, ReadText(in));
        sources.emplace_back(path.string(), std::move(text));
      }
    } else {
      std::ifstream in(file);
      if (!in) return InvalidArgument("the path \"" + file + "\" does not exist");
      QUIVER_ASSIGN_OR_RETURN(std::string text, ReadText(in));
      sources.emplace_back(file, std::move(text));
    }
    for (auto& [name, text] : sources) {
      QUIVER_ASSIGN_OR_RETURN(std::vector<spec::Manifest> manifests,
                              spec::ParseManifests(text, name));
      for (spec::Manifest& m : manifests) out.push_back(std::move(m));
    }
  }
  if (out.empty()) return InvalidArgument("no objects in the input");
  return out;
}

StatusOr<render::RenderOptions> MakeOptions(const RenderFlags& f) {
  render::RenderOptions options;
  if (!f.mode.empty()) {
    options.mode = render::ParseMode(f.mode);
    if (!options.mode) {
      return InvalidArgument("--mode: expected standard or knative, got \"" + f.mode + "\"");
    }
  }
  if (f.output != "yaml" && f.output != "json") {
    return InvalidArgument("-o: expected yaml or json, got \"" + f.output + "\"");
  }
  if (f.image.empty()) return InvalidArgument("--image: must not be empty");
  options.image = f.image;
  options.default_namespace = f.ns;
  size_t slash = f.gateway.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == f.gateway.size()) {
    return InvalidArgument("--gateway: expected NAMESPACE/NAME, got \"" + f.gateway + "\"");
  }
  options.gateway_namespace = f.gateway.substr(0, slash);
  options.gateway_name = f.gateway.substr(slash + 1);
  options.domain = f.domain;
  options.prometheus_url = f.prometheus_url;
  options.storage_secret = f.storage_secret;
  for (const std::string& item : f.previous_revisions) {
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
      return InvalidArgument(
          "--previous-revision: expected KSVC=REVISION (for example "
          "sklearn-iris-predictor=sklearn-iris-predictor-1a2b3c4d), got \"" +
          item + "\"");
    }
    options.previous_revisions[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return options;
}

int RunRender(const RenderFlags& f) {
  StatusOr<render::RenderOptions> options = MakeOptions(f);
  if (!options.ok()) {
    std::cerr << "error: " << options.status().message() << "\n";
    return 2;
  }
  StatusOr<std::vector<spec::Manifest>> manifests = ReadInputs(f.files);
  if (!manifests.ok()) {
    std::cerr << "error: " << manifests.status().message() << "\n";
    return 1;
  }
  StatusOr<std::vector<spec::Json>> objects = render::RenderManifests(*manifests, *options);
  if (!objects.ok()) {
    std::cerr << "error: " << objects.status().message() << "\n";
    return 1;
  }
  std::cout << (f.output == "json" ? render::ToJsonList(*objects) : render::ToYamlStream(*objects));
  std::cout.flush();
  return std::cout ? 0 : 1;
}

}  // namespace

void AddRenderCommand(CLI::App& app) {
  auto f = std::make_shared<RenderFlags>();
  CLI::App* cmd = app.add_subcommand(
      "render",
      "Render InferenceService/InferenceGraph YAML as Kubernetes objects that run Quiver's "
      "image (for clusters without KServe)");
  cmd->add_option("-f,--filename", f->files, "File, directory of .yaml/.json files, or -")
      ->required();
  cmd->add_option("--mode", f->mode,
                  "standard (Deployment, Service, HPA/KEDA, HTTPRoute) or knative (Knative "
                  "Service); default: each resource's serving.kserve.io/deploymentMode, else "
                  "standard");
  cmd->add_option("-o,--output", f->output, "yaml (a --- separated stream) or json (a List)")
      ->capture_default_str();
  cmd->add_option("--image", f->image, "Quiver's container image")->capture_default_str();
  cmd->add_option("-n,--namespace", f->ns, "Namespace of resources that name none")
      ->capture_default_str();
  cmd->add_option("--gateway", f->gateway, "Gateway API Gateway the HTTPRoutes attach to")
      ->capture_default_str();
  cmd->add_option("--domain", f->domain, "Hostnames are NAME-NAMESPACE.DOMAIN")
      ->capture_default_str();
  cmd->add_option("--prometheus-url", f->prometheus_url,
                  "Prometheus that KEDA queries for concurrency/rps scaling")
      ->capture_default_str();
  cmd->add_option("--storage-secret", f->storage_secret,
                  "Secret whose keys (AWS_ACCESS_KEY_ID, ...) become the storage initializer's "
                  "environment");
  cmd->add_option("--previous-revision", f->previous_revisions,
                  "KSVC=REVISION: the revision that has 100% before a canaryTrafficPercent "
                  "change (knative mode; repeatable)");
  cmd->callback([f] { throw CLI::RuntimeError(RunRender(*f)); });
}

}  // namespace quiver
