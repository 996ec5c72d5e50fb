#include "cli/resource_commands.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/api_client.h"
#include "cli/state_dir.h"
#include "spec/resource.h"

namespace quiver {
namespace {

namespace fs = std::filesystem;
using Json = spec::Json;

constexpr std::string_view kGroup = "serving.kserve.io";

// Flags every verb shares: where the API is and which namespace.
struct ConnectionFlags {
  std::string server;
  std::string token;
  std::string state_dir;
  std::string ns;  // empty: "default"
};

void AddConnectionFlags(CLI::App* cmd, ConnectionFlags* f) {
  cmd->add_option("--server,-s", f->server,
                  "API URL (default $QUIVER_SERVER or <state-dir>/api.addr)");
  cmd->add_option("--token", f->token,
                  "Bearer token (default $QUIVER_TOKEN or "
                  "<state-dir>/api.token)");
  cmd->add_option("--state-dir", f->state_dir,
                  "State dir of `quiver up` (default $QUIVER_STATE_DIR or ~/.quiver)");
  cmd->add_option("--namespace,-n", f->ns, "Namespace (default \"default\")");
}

std::string Namespace(const ConnectionFlags& f) { return f.ns.empty() ? "default" : f.ns; }

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

std::optional<std::string> ReadTrimmed(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

StatusOr<api::ApiClientOptions> ResolveConnection(const ConnectionFlags& f) {
  api::ApiClientOptions options;
  std::string state_dir = ResolveStateDir(f.state_dir);
  options.server = !f.server.empty() ? f.server : Env("QUIVER_SERVER");
  if (options.server.empty()) {
    std::string addr = state_dir + "/" + kApiAddrFile;
    auto url = ReadTrimmed(addr);
    if (!url || url->empty()) {
      return FailedPrecondition("no quiver API to talk to: " + addr +
                                " does not exist (start `quiver up`, or pass --server / set "
                                "$QUIVER_SERVER)");
    }
    options.server = *url;
  }
  if (options.server.find("://") == std::string::npos) options.server = "http://" + options.server;
  options.token = !f.token.empty() ? f.token : Env("QUIVER_TOKEN");
  if (options.token.empty()) {
    options.token = ReadTrimmed(state_dir + "/" + kApiTokenFile).value_or("");
  }
  return options;
}

int PrintError(const std::string& message) {
  std::cerr << "error: " << message << "\n";
  return 1;
}

// kubectl's rendering of an API error: "Error from server (NotFound): <message>".
int PrintServerError(const api::ApiReply& reply) {
  Json status = Json::parse(reply.body, nullptr, false);
  if (status.is_object() && status.value("kind", "") == "Status") {
    std::cerr << "Error from server (" << status.value("reason", "Unknown")
              << "): " << status.value("message", "") << "\n";
  } else {
    std::cerr << "Error from server (HTTP " << reply.status << "): " << reply.body << "\n";
  }
  return 1;
}

std::string CollectionPath(const spec::KindInfo& kind, const std::string& ns) {
  std::string base = "/apis/" + std::string(kind.group) + "/" + std::string(kind.version);
  if (kind.namespaced && !ns.empty()) base += "/namespaces/" + ns;
  return base + "/" + std::string(kind.plural);
}

std::string ObjectPath(const spec::KindInfo& kind, const std::string& ns, const std::string& name) {
  return CollectionPath(kind, ns) + "/" + name;
}

// "inferenceservice.serving.kserve.io", kubectl's name for a resource type in messages.
std::string TypeLabel(const spec::KindInfo& kind) {
  std::string lower(kind.name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return lower + "." + std::string(kind.group);
}

const spec::KindInfo* KindArg(const std::string& type) {
  const spec::KindInfo* kind = spec::FindKind(type);
  if (kind == nullptr) {
    std::cerr << "error: the server doesn't have a resource type \"" << type
              << "\" (known: inferenceservices (isvc), servingruntimes, clusterservingruntimes, "
                 "inferencegraphs (ig), trainedmodels (tm))\n";
  }
  return kind;
}

// --- Reading manifests ----------------------------------------------------------------------

// A storageUri that is a relative local path means "relative to the file it is written in" (or
// to the working directory for stdin): the daemon runs elsewhere, so the CLI makes it absolute.
// Covers model.storageUri, the older framework keys, and the STORAGE_URI env of containers.
void ResolveRelativeStorageUris(Json& doc, const fs::path& base) {
  auto resolve = [&](Json& value) {
    if (!value.is_string()) return;
    std::string uri = value.get<std::string>();
    if (uri.empty() || uri.find("://") != std::string::npos || uri[0] == '/') return;
    value = (fs::absolute(base) / uri).lexically_normal().string();
  };
  auto component = [&](Json& c) {
    if (!c.is_object()) return;
    for (auto& [key, value] : c.items()) {
      if (value.is_object() && value.contains("storageUri")) resolve(value["storageUri"]);
    }
    if (c.contains("containers") && c["containers"].is_array()) {
      for (auto& container : c["containers"]) {
        if (!container.is_object() || !container.contains("env") ||
            !container["env"].is_array()) {
          continue;
        }
        for (auto& env : container["env"]) {
          if (env.is_object() && env.value("name", "") == "STORAGE_URI" && env.contains("value")) {
            resolve(env["value"]);
          }
        }
      }
    }
  };
  if (!doc.is_object() || !doc.contains("spec") || !doc["spec"].is_object()) return;
  Json& spec = doc["spec"];
  for (const char* c : {"predictor", "transformer", "explainer"}) {
    if (spec.contains(c)) component(spec[c]);
  }
  if (doc.value("kind", "") == "TrainedModel" && spec.contains("model") &&
      spec["model"].is_object() && spec["model"].contains("storageUri")) {
    resolve(spec["model"]["storageUri"]);
  }
}

StatusOr<std::vector<spec::Manifest>> ReadManifests(const std::vector<std::string>& files) {
  std::vector<spec::Manifest> out;
  for (const auto& file : files) {
    std::vector<std::pair<std::string, std::string>> sources;  // name, text
    if (file == "-") {
      std::string text((std::istreambuf_iterator<char>(std::cin)),
                       std::istreambuf_iterator<char>());
      sources.emplace_back("<stdin>", std::move(text));
    } else if (fs::is_directory(file)) {
      std::vector<fs::path> paths;
      for (const auto& entry : fs::directory_iterator(file)) {
        auto ext = entry.path().extension().string();
        if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml" || ext == ".json")) {
          paths.push_back(entry.path());
        }
      }
      std::sort(paths.begin(), paths.end());
      if (paths.empty()) {
        return InvalidArgument(file + ": no .yaml, .yml or .json files in this directory");
      }
      for (const auto& p : paths) {
        std::ifstream in(p);
        sources.emplace_back(p.string(), std::string((std::istreambuf_iterator<char>(in)),
                                                     std::istreambuf_iterator<char>()));
      }
    } else {
      std::ifstream in(file);
      if (!in) return InvalidArgument("the path \"" + file + "\" does not exist");
      sources.emplace_back(file, std::string((std::istreambuf_iterator<char>(in)),
                                             std::istreambuf_iterator<char>()));
    }
    for (auto& [name, text] : sources) {
      QUIVER_ASSIGN_OR_RETURN(auto manifests, spec::ParseManifests(text, name));
      fs::path base = name == "<stdin>" ? fs::current_path() : fs::path(name).parent_path();
      for (auto& m : manifests) {
        ResolveRelativeStorageUris(m.doc, base);
        out.push_back(std::move(m));
      }
    }
  }
  if (out.empty()) return InvalidArgument("no objects passed to apply");
  return out;
}

// Validates a manifest as the server will, in the namespace -n names. kubectl refuses an object
// whose namespace differs from an explicit -n, and so do we.
Status PrepareManifest(spec::Manifest& m, const ConnectionFlags& f) {
  Json& doc = m.doc;
  if (!f.ns.empty() && doc.is_object() && doc.contains("metadata") && doc["metadata"].is_object() &&
      doc["metadata"].contains("namespace") && doc["metadata"]["namespace"].is_string() &&
      doc["metadata"]["namespace"] != f.ns) {
    return InvalidArgument(m.source + ": the namespace from the provided object \"" +
                           doc["metadata"]["namespace"].get<std::string>() +
                           "\" does not match the namespace \"" + f.ns + "\"; pass --namespace=" +
                           doc["metadata"]["namespace"].get<std::string>() + " or remove it");
  }
  Status s = spec::DefaultAndValidate(doc, Namespace(f));
  if (!s.ok()) return InvalidArgument(m.source + ": " + s.message());
  return Status::Ok();
}

// --- Output ---------------------------------------------------------------------------------

// kubectl's column layout: every column but the last padded to its widest cell plus 3.
void PrintTable(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  if (rows.empty()) return;
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 3, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
}

std::optional<std::chrono::system_clock::time_point> ParseTimestamp(const std::string& ts) {
  std::tm tm{};
  std::istringstream in(ts);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  if (in.fail()) return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

// kubectl's HumanDuration: "45s", "3m12s", "5h", "2d3h", "400d", "3y20d".
std::string HumanDuration(std::chrono::seconds d) {
  int64_t seconds = d.count();
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return std::to_string(seconds) + "s";
  int64_t minutes = seconds / 60;
  if (minutes < 10) {
    int64_t s = seconds % 60;
    return std::to_string(minutes) + "m" + (s == 0 ? "" : std::to_string(s) + "s");
  }
  if (minutes < 180) return std::to_string(minutes) + "m";
  int64_t hours = minutes / 60;
  if (hours < 8) {
    int64_t m = minutes % 60;
    return std::to_string(hours) + "h" + (m == 0 ? "" : std::to_string(m) + "m");
  }
  if (hours < 48) return std::to_string(hours) + "h";
  if (hours < 24 * 8) {
    int64_t h = hours % 24;
    return std::to_string(hours / 24) + "d" + (h == 0 ? "" : std::to_string(h) + "h");
  }
  if (hours < 24 * 365 * 2) return std::to_string(hours / 24) + "d";
  if (hours < 24 * 365 * 8) {
    int64_t days = (hours / 24) % 365;
    return std::to_string(hours / 24 / 365) + "y" + (days == 0 ? "" : std::to_string(days) + "d");
  }
  return std::to_string(hours / 24 / 365) + "y";
}

std::string Age(const Json& obj) {
  auto t = ParseTimestamp(obj["metadata"].value("creationTimestamp", ""));
  if (!t) return "<unknown>";
  return HumanDuration(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - *t));
}

// A JSON scalar as a table cell: strings bare, numbers and booleans as written.
std::string Cell(const Json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump();
}

const Json& At(const Json& obj, std::initializer_list<std::string_view> path) {
  static const Json kNull;
  const Json* cur = &obj;
  for (auto key : path) {
    if (!cur->is_object()) return kNull;
    auto it = cur->find(std::string(key));
    if (it == cur->end()) return kNull;
    cur = &*it;
  }
  return *cur;
}

std::string ReadyCondition(const Json& obj) {
  for (const auto& c : At(obj, {"status", "conditions"})) {
    if (c.is_object() && c.value("type", "") == "Ready") return Cell(c.value("status", Json()));
  }
  return "";
}

// The predictor traffic target matching `pred`, for KServe's print columns.
template <typename Pred>
const Json& TrafficWhere(const Json& obj, Pred pred) {
  static const Json kNull;
  for (const auto& t : At(obj, {"status", "components", "predictor", "traffic"})) {
    if (t.is_object() && pred(t)) return t;
  }
  return kNull;
}

std::string JoinNames(const Json& list, std::string_view key) {
  std::string out;
  if (!list.is_array()) return out;
  for (const auto& item : list) {
    if (!item.is_object() || !item.contains(std::string(key))) continue;
    if (!out.empty()) out += ",";
    out += Cell(item[std::string(key)]);
  }
  return out;
}

// The columns `get` prints per kind; the ones KServe's CRDs declare as printer columns.
std::vector<std::string> Header(const spec::KindInfo& kind, bool wide) {
  switch (kind.kind) {
    case spec::Kind::kInferenceService: {
      std::vector<std::string> h = {
          "NAME", "URL", "READY", "PREV", "LATEST", "PREVROLLEDOUTREVISION", "LATESTREADYREVISION",
          "AGE"};
      if (wide) {
        h.push_back("RUNTIME");
        h.push_back("STORAGEURI");
      }
      return h;
    }
    case spec::Kind::kServingRuntime:
    case spec::Kind::kClusterServingRuntime:
      return {"NAME", "DISABLED", "MODELTYPE", "CONTAINERS", "AGE"};
    case spec::Kind::kInferenceGraph:
    case spec::Kind::kTrainedModel:
      return {"NAME", "URL", "READY", "AGE"};
  }
  return {"NAME", "AGE"};
}

std::vector<std::string> Row(const spec::KindInfo& kind, const Json& obj, bool wide) {
  std::string name = obj["metadata"].value("name", "");
  switch (kind.kind) {
    case spec::Kind::kInferenceService: {
      const Json& prev =
          TrafficWhere(obj, [](const Json& t) { return t.value("tag", "") == "prev"; });
      const Json& latest =
          TrafficWhere(obj, [](const Json& t) { return t.value("latestRevision", false); });
      std::vector<std::string> row = {name,
                                      Cell(At(obj, {"status", "url"})),
                                      ReadyCondition(obj),
                                      Cell(At(prev, {"percent"})),
                                      Cell(At(latest, {"percent"})),
                                      Cell(At(prev, {"revisionName"})),
                                      Cell(At(latest, {"revisionName"})),
                                      Age(obj)};
      if (wide) {
        std::string runtime = Cell(At(obj, {"status", "servingRuntimeName"}));
        if (runtime.empty()) runtime = Cell(At(obj, {"status", "clusterServingRuntimeName"}));
        if (runtime.empty()) runtime = Cell(At(obj, {"spec", "predictor", "model", "runtime"}));
        row.push_back(runtime);
        row.push_back(Cell(At(obj, {"spec", "predictor", "model", "storageUri"})));
      }
      return row;
    }
    case spec::Kind::kServingRuntime:
    case spec::Kind::kClusterServingRuntime: {
      const Json& disabled = At(obj, {"spec", "disabled"});
      return {name, disabled.is_null() ? "" : Cell(disabled),
              JoinNames(At(obj, {"spec", "supportedModelFormats"}), "name"),
              JoinNames(At(obj, {"spec", "containers"}), "name"), Age(obj)};
    }
    case spec::Kind::kInferenceGraph:
    case spec::Kind::kTrainedModel:
      return {name, Cell(At(obj, {"status", "url"})), ReadyCondition(obj), Age(obj)};
  }
  return {name, Age(obj)};
}

// --- Verbs ----------------------------------------------------------------------------------

struct ApplyFlags {
  ConnectionFlags conn;
  std::vector<std::string> files;
  int wait_seconds = 0;  // > 0: wait for the InferenceServices to be Ready, showing progress
};

// Waits until every InferenceService in `names` (namespace, name) has Ready=True, printing one
// progress line per service whenever its state changes (the predictor's condition message
// carries the download progress). Returns 0 when all are ready, 1 on timeout or error.
int WaitReady(api::ApiClient& client, const std::vector<std::pair<std::string, std::string>>& names,
              int timeout_seconds) {
  const spec::KindInfo& kind = spec::InfoOf(spec::Kind::kInferenceService);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  std::map<std::string, std::string> shown;
  std::set<std::string> ready;
  while (ready.size() < names.size()) {
    for (const auto& [ns, name] : names) {
      if (ready.count(ns + "/" + name)) continue;
      auto r = client.Call("GET", ObjectPath(kind, ns, name));
      if (!r.ok()) return PrintError(r.status().message());
      if (r->status != 200) return PrintServerError(*r);
      Json doc = Json::parse(r->body, nullptr, false);
      std::string line = "not ready";
      bool is_ready = false;
      for (const auto& c : At(doc, {"status", "conditions"})) {
        std::string type = c.value("type", "");
        if (type == "Ready" && c.value("status", "") == "True") is_ready = true;
        if (type.size() > 5 && type.substr(type.size() - 5) == "Ready" && type != "Ready" &&
            type != "IngressReady" && c.value("status", "") != "True") {
          line = type + ": " + c.value("reason", "") +
                 (c.contains("message") ? " (" + c.value("message", "") + ")" : "");
        }
      }
      if (is_ready) {
        ready.insert(ns + "/" + name);
        const Json& url = At(doc, {"status", "url"});
        line = "ready" + (url.is_string() ? " at " + url.get<std::string>() : std::string());
      }
      std::string& last = shown[ns + "/" + name];
      if (line != last) {
        std::cout << "inferenceservice.serving.kserve.io/" << name << " " << line << std::endl;
        last = line;
      }
    }
    if (ready.size() == names.size()) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      std::cerr << "error: timed out after " << timeout_seconds
                << " s waiting for the InferenceServices to be Ready\n";
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return 0;
}

int RunApply(const ApplyFlags& f) {
  auto manifests = ReadManifests(f.files);
  if (!manifests.ok()) return PrintError(manifests.status().message());
  // Every document is checked before any is sent, so a typo leaves the server untouched.
  for (auto& m : *manifests) {
    if (Status s = PrepareManifest(m, f.conn); !s.ok()) return PrintError(s.message());
  }
  auto options = ResolveConnection(f.conn);
  if (!options.ok()) return PrintError(options.status().message());
  api::ApiClient client(*options);
  int rc = 0;
  std::vector<std::pair<std::string, std::string>> waited;  // InferenceServices applied
  for (const auto& m : *manifests) {
    const Json& doc = m.doc;
    const spec::KindInfo& kind = spec::InfoOf(spec::KindOf(doc));
    std::string name = doc["metadata"].value("name", "");
    std::string ns = doc["metadata"].value("namespace", "");
    std::string label = TypeLabel(kind) + "/" + name;
    auto existing = client.Call("GET", ObjectPath(kind, ns, name));
    if (!existing.ok()) return PrintError(existing.status().message());
    std::string verb;
    std::optional<api::ApiReply> reply;
    if (existing->status == 404) {
      auto r = client.Call("POST", CollectionPath(kind, ns), doc.dump());
      if (!r.ok()) return PrintError(r.status().message());
      reply = std::move(*r);
      verb = "created";
    } else if (existing->status == 200) {
      Json current = Json::parse(existing->body, nullptr, false);
      auto same = [&](std::string_view field) {
        return At(current, {"metadata", field}) == At(doc, {"metadata", field});
      };
      if (current.is_object() && current.value("spec", Json()) == doc.value("spec", Json()) &&
          same("labels") && same("annotations")) {
        std::cout << label << " unchanged\n";
        continue;
      }
      // Like kubectl apply, the file wins: no resourceVersion, so no conflict with the status
      // writes the reconciler makes meanwhile. Finalizers the server set are kept, as
      // kubectl's merge keeps them, unless the file lists its own.
      Json sent = doc;
      if (!At(doc, {"metadata", "finalizers"}).is_array() &&
          At(current, {"metadata", "finalizers"}).is_array()) {
        sent["metadata"]["finalizers"] = current["metadata"]["finalizers"];
      }
      auto r = client.Call("PUT", ObjectPath(kind, ns, name), sent.dump());
      if (!r.ok()) return PrintError(r.status().message());
      reply = std::move(*r);
      verb = "configured";
    } else {
      rc = PrintServerError(*existing);
      continue;
    }
    if (reply->status >= 300) {
      rc = PrintServerError(*reply);
      continue;
    }
    std::cout << label << " " << verb << "\n";
    if (kind.kind == spec::Kind::kInferenceService) waited.emplace_back(ns, name);
  }
  if (rc == 0 && f.wait_seconds > 0 && !waited.empty()) {
    return WaitReady(client, waited, f.wait_seconds);
  }
  return rc;
}

struct GetFlags {
  ConnectionFlags conn;
  std::string type;
  std::vector<std::string> names;
  bool all_namespaces = false;
  std::string output;
};

int RunGet(const GetFlags& f) {
  const spec::KindInfo* kind = KindArg(f.type);
  if (kind == nullptr) return 1;
  if (!f.output.empty() && f.output != "json" && f.output != "yaml" && f.output != "wide" &&
      f.output != "name") {
    return PrintError("unable to match a printer suitable for the output format \"" + f.output +
                      "\", allowed formats are: json, name, wide, yaml");
  }
  if (f.all_namespaces && !f.names.empty()) {
    return PrintError("a resource cannot be retrieved by name across all namespaces");
  }
  auto options = ResolveConnection(f.conn);
  if (!options.ok()) return PrintError(options.status().message());
  api::ApiClient client(*options);
  std::string ns = kind->namespaced ? Namespace(f.conn) : "";

  std::vector<Json> items;
  Json list_doc;
  int rc = 0;
  if (f.names.empty()) {
    auto reply = client.Call("GET", CollectionPath(*kind, f.all_namespaces ? "" : ns));
    if (!reply.ok()) return PrintError(reply.status().message());
    if (reply->status != 200) return PrintServerError(*reply);
    list_doc = Json::parse(reply->body, nullptr, false);
    if (!list_doc.is_object()) return PrintError("the server sent an unreadable list");
    for (auto& item : list_doc["items"]) items.push_back(item);
  } else {
    for (const auto& name : f.names) {
      auto reply = client.Call("GET", ObjectPath(*kind, ns, name));
      if (!reply.ok()) return PrintError(reply.status().message());
      if (reply->status != 200) {
        rc = PrintServerError(*reply);
        continue;
      }
      items.push_back(Json::parse(reply->body, nullptr, false));
    }
  }

  if (f.output == "json" || f.output == "yaml") {
    Json out;
    if (f.names.size() == 1) {
      if (items.empty()) return rc;
      out = items[0];
    } else if (f.names.empty()) {
      out = list_doc;
    } else {
      out = {{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}};
    }
    std::string text = f.output == "json" ? out.dump(4) : spec::ToYaml(out);
    if (text.empty() || text.back() != '\n') text += '\n';
    std::cout << text;
    return rc;
  }
  if (f.output == "name") {
    for (const auto& item : items) {
      std::cout << TypeLabel(*kind) << "/" << item["metadata"].value("name", "") << "\n";
    }
    return rc;
  }
  if (items.empty()) {
    if (f.names.empty()) {
      if (f.all_namespaces || !kind->namespaced) {
        std::cerr << "No resources found\n";
      } else {
        std::cerr << "No resources found in " << ns << " namespace.\n";
      }
    }
    return rc;
  }
  bool wide = f.output == "wide";
  bool with_ns = f.all_namespaces && kind->namespaced;
  std::vector<std::vector<std::string>> rows;
  rows.push_back(Header(*kind, wide));
  if (with_ns) rows[0].insert(rows[0].begin(), "NAMESPACE");
  for (const auto& item : items) {
    auto row = Row(*kind, item, wide);
    if (with_ns) row.insert(row.begin(), item["metadata"].value("namespace", ""));
    rows.push_back(std::move(row));
  }
  PrintTable(rows, std::cout);
  return rc;
}

void PrintIndentedYaml(const Json& doc, const std::string& indent, std::ostream& out) {
  std::istringstream yaml(spec::ToYaml(doc));
  std::string line;
  while (std::getline(yaml, line)) out << indent << line << "\n";
}

void PrintMap(std::string_view title, const Json& map, std::ostream& out) {
  out << title;
  if (!map.is_object() || map.empty()) {
    out << std::string(14 - title.size(), ' ') << "<none>\n";
    return;
  }
  bool first = true;
  for (auto it = map.begin(); it != map.end(); ++it) {
    out << (first ? std::string(14 - title.size(), ' ') : std::string(14, ' ')) << it.key() << "="
        << Cell(it.value()) << "\n";
    first = false;
  }
}

struct DescribeFlags {
  ConnectionFlags conn;
  std::string type;
  std::string name;
};

int RunDescribe(const DescribeFlags& f) {
  const spec::KindInfo* kind = KindArg(f.type);
  if (kind == nullptr) return 1;
  auto options = ResolveConnection(f.conn);
  if (!options.ok()) return PrintError(options.status().message());
  api::ApiClient client(*options);
  std::string ns = kind->namespaced ? Namespace(f.conn) : "";
  std::string path = ObjectPath(*kind, ns, f.name);
  auto reply = client.Call("GET", path);
  if (!reply.ok()) return PrintError(reply.status().message());
  if (reply->status != 200) return PrintServerError(*reply);
  Json obj = Json::parse(reply->body, nullptr, false);
  const Json& meta = obj["metadata"];
  std::ostream& out = std::cout;
  out << "Name:         " << meta.value("name", "") << "\n";
  if (kind->namespaced) out << "Namespace:    " << meta.value("namespace", "") << "\n";
  PrintMap("Labels:", meta.value("labels", Json()), out);
  PrintMap("Annotations:", meta.value("annotations", Json()), out);
  out << "API Version:  " << obj.value("apiVersion", "") << "\n";
  out << "Kind:         " << obj.value("kind", "") << "\n";
  out << "Metadata:\n";
  std::vector<std::vector<std::string>> meta_rows = {
      {"  Creation Timestamp:", Cell(At(meta, {"creationTimestamp"})) + " (" + Age(obj) + " ago)"},
      {"  Generation:", Cell(At(meta, {"generation"}))},
      {"  Resource Version:", Cell(At(meta, {"resourceVersion"}))},
      {"  UID:", Cell(At(meta, {"uid"}))}};
  if (meta.contains("deletionTimestamp")) {
    meta_rows.push_back({"  Deletion Timestamp:", Cell(meta["deletionTimestamp"])});
  }
  PrintTable(meta_rows, out);
  out << "Spec:\n";
  PrintIndentedYaml(obj.value("spec", Json::object()), "  ", out);

  const Json& status = obj.value("status", Json::object());
  out << "Status:\n";
  if (status.contains("url")) out << "  URL:  " << Cell(status["url"]) << "\n";
  const Json& conditions = At(status, {"conditions"});
  if (conditions.is_array() && !conditions.empty()) {
    out << "  Conditions:\n";
    std::vector<std::vector<std::string>> rows = {
        {"    Type", "Status", "Reason", "Message", "Last Transition Time"}};
    for (const auto& c : conditions) {
      rows.push_back({"    " + Cell(At(c, {"type"})), Cell(At(c, {"status"})),
                      Cell(At(c, {"reason"})), Cell(At(c, {"message"})),
                      Cell(At(c, {"lastTransitionTime"}))});
    }
    PrintTable(rows, out);
  } else {
    out << "  Conditions:  <none>\n";
  }

  if (kind->kind == spec::Kind::kInferenceService) {
    std::vector<std::vector<std::string>> traffic = {
        {"  Component", "Revision", "Percent", "Tag", "Latest"}};
    const Json& components = At(status, {"components"});
    if (components.is_object()) {
      for (auto it = components.begin(); it != components.end(); ++it) {
        for (const auto& t : At(it.value(), {"traffic"})) {
          traffic.push_back({"  " + it.key(), Cell(At(t, {"revisionName"})),
                             Cell(At(t, {"percent"})), Cell(At(t, {"tag"})),
                             Cell(At(t, {"latestRevision"}))});
        }
      }
    }
    if (traffic.size() > 1) {
      out << "Traffic:\n";
      PrintTable(traffic, out);
    } else {
      out << "Traffic:      <none>\n";
    }
    auto revisions = client.Call("GET", path + "/revisions");
    if (!revisions.ok()) return PrintError(revisions.status().message());
    if (revisions->status != 200) return PrintServerError(*revisions);
    Json revs = Json::parse(revisions->body, nullptr, false);
    std::vector<std::vector<std::string>> rows = {
        {"  Component", "Revision", "Created", "Replicas", "Ready"}};
    for (const auto& r : At(revs, {"items"})) {
      int ready = 0;
      for (const auto& rep : At(r, {"replicas"})) ready += rep.value("state", "") == "Ready";
      rows.push_back({"  " + Cell(At(r, {"component"})), Cell(At(r, {"name"})),
                      Cell(At(r, {"created"})), std::to_string(At(r, {"replicas"}).size()),
                      std::to_string(ready)});
    }
    if (rows.size() > 1) {
      out << "Revisions:\n";
      PrintTable(rows, out);
    } else {
      out << "Revisions:    <none>\n";
    }
  }

  auto events = client.Call("GET", path + "/events");
  if (!events.ok()) return PrintError(events.status().message());
  if (events->status != 200) return PrintServerError(*events);
  Json ev = Json::parse(events->body, nullptr, false);
  const Json& items = At(ev, {"items"});
  if (!items.is_array() || items.empty()) {
    out << "Events:       <none>\n";
    return 0;
  }
  out << "Events:\n";
  std::vector<std::vector<std::string>> rows = {{"  Type", "Reason", "Age", "Message"},
                                                {"  ----", "------", "----", "-------"}};
  for (const auto& e : items) {
    auto t = ParseTimestamp(e.value("lastTimestamp", ""));
    std::string age = t ? HumanDuration(std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now() - *t))
                        : "";
    rows.push_back(
        {"  " + Cell(At(e, {"type"})), Cell(At(e, {"reason"})), age, Cell(At(e, {"message"}))});
  }
  PrintTable(rows, out);
  return 0;
}

struct DeleteFlags {
  ConnectionFlags conn;
  std::vector<std::string> args;  // TYPE NAME...
  std::vector<std::string> files;
};

int RunDelete(const DeleteFlags& f) {
  struct Target {
    const spec::KindInfo* kind;
    std::string ns;
    std::string name;
  };
  std::vector<Target> targets;
  if (!f.files.empty()) {
    if (!f.args.empty()) return PrintError("give either -f FILE or TYPE NAME, not both");
    auto manifests = ReadManifests(f.files);
    if (!manifests.ok()) return PrintError(manifests.status().message());
    for (auto& m : *manifests) {
      if (Status s = PrepareManifest(m, f.conn); !s.ok()) return PrintError(s.message());
      const spec::KindInfo& kind = spec::InfoOf(spec::KindOf(m.doc));
      targets.push_back(
          {&kind, m.doc["metadata"].value("namespace", ""), m.doc["metadata"].value("name", "")});
    }
  } else {
    if (f.args.size() < 2) {
      return PrintError(
          "delete needs TYPE NAME... (e.g. `quiver delete isvc sklearn-iris`) or "
          "-f FILE");
    }
    const spec::KindInfo* kind = KindArg(f.args[0]);
    if (kind == nullptr) return 1;
    for (size_t i = 1; i < f.args.size(); ++i) {
      targets.push_back({kind, kind->namespaced ? Namespace(f.conn) : "", f.args[i]});
    }
  }
  auto options = ResolveConnection(f.conn);
  if (!options.ok()) return PrintError(options.status().message());
  api::ApiClient client(*options);
  int rc = 0;
  for (const auto& t : targets) {
    auto reply = client.Call("DELETE", ObjectPath(*t.kind, t.ns, t.name));
    if (!reply.ok()) return PrintError(reply.status().message());
    if (reply->status != 200) {
      rc = PrintServerError(*reply);
      continue;
    }
    std::cout << TypeLabel(*t.kind) << " \"" << t.name << "\" deleted\n";
  }
  return rc;
}

struct LogsFlags {
  ConnectionFlags conn;
  std::string target;  // isvc/NAME or NAME
  std::string component = "predictor";
};

int RunLogs(const LogsFlags& f) {
  std::string name = f.target;
  if (auto slash = f.target.find('/'); slash != std::string::npos) {
    const spec::KindInfo* kind = spec::FindKind(f.target.substr(0, slash));
    if (kind == nullptr || kind->kind != spec::Kind::kInferenceService) {
      return PrintError("logs are kept for inferenceservices only: use isvc/NAME, got \"" +
                        f.target + "\"");
    }
    name = f.target.substr(slash + 1);
  }
  if (name.empty()) return PrintError("logs needs isvc/NAME");
  auto options = ResolveConnection(f.conn);
  if (!options.ok()) return PrintError(options.status().message());
  api::ApiClient client(*options);
  const spec::KindInfo& kind = spec::InfoOf(spec::Kind::kInferenceService);
  auto reply = client.Call(
      "GET", ObjectPath(kind, Namespace(f.conn), name) + "/log?component=" + f.component);
  if (!reply.ok()) return PrintError(reply.status().message());
  if (reply->status != 200) return PrintServerError(*reply);
  std::cout << reply->body;
  return 0;
}

}  // namespace

void AddResourceCommands(CLI::App& app) {
  {
    auto f = std::make_shared<ApplyFlags>();
    CLI::App* cmd = app.add_subcommand(
        "apply", "Create or update resources from YAML/JSON files (like kubectl apply)");
    cmd->add_option("-f,--filename", f->files, "File, directory of .yaml/.json files, or -")
        ->required();
    cmd->add_option("--wait", f->wait_seconds,
                    "Wait up to this many seconds for the InferenceServices to be Ready, "
                    "showing their progress (downloads, replicas); exit 1 on timeout")
        ->check(CLI::Range(0, 86400));
    AddConnectionFlags(cmd, &f->conn);
    cmd->callback([f] { throw CLI::RuntimeError(RunApply(*f)); });
  }
  {
    auto f = std::make_shared<GetFlags>();
    CLI::App* cmd = app.add_subcommand("get", "List resources or show one (like kubectl get)");
    cmd->add_option("type", f->type,
                    "isvc|inferenceservices|servingruntimes|clusterservingruntimes|ig|tm")
        ->required();
    cmd->add_option("names", f->names, "Names to show (default: all)");
    cmd->add_flag("-A,--all-namespaces", f->all_namespaces, "List across all namespaces");
    cmd->add_option("-o,--output", f->output, "json|yaml|wide|name");
    AddConnectionFlags(cmd, &f->conn);
    cmd->callback([f] { throw CLI::RuntimeError(RunGet(*f)); });
  }
  {
    auto f = std::make_shared<DescribeFlags>();
    CLI::App* cmd = app.add_subcommand(
        "describe", "Show a resource's spec, conditions, revisions, traffic and events");
    cmd->add_option("type", f->type, "isvc|servingruntime|...")->required();
    cmd->add_option("name", f->name, "Resource name")->required();
    AddConnectionFlags(cmd, &f->conn);
    cmd->callback([f] { throw CLI::RuntimeError(RunDescribe(*f)); });
  }
  {
    auto f = std::make_shared<DeleteFlags>();
    CLI::App* cmd = app.add_subcommand("delete", "Delete resources by TYPE NAME or -f FILE");
    cmd->add_option("args", f->args, "TYPE NAME...");
    cmd->add_option("-f,--filename", f->files, "File, directory or - naming what to delete");
    AddConnectionFlags(cmd, &f->conn);
    cmd->callback([f] { throw CLI::RuntimeError(RunDelete(*f)); });
  }
  {
    auto f = std::make_shared<LogsFlags>();
    CLI::App* cmd = app.add_subcommand("logs", "Print the logs of an InferenceService's replicas");
    cmd->add_option("target", f->target, "isvc/NAME")->required();
    cmd->add_option("--component,-c", f->component, "predictor|transformer|explainer")
        ->check(CLI::IsMember({"predictor", "transformer", "explainer"}))
        ->capture_default_str();
    AddConnectionFlags(cmd, &f->conn);
    cmd->callback([f] { throw CLI::RuntimeError(RunLogs(*f)); });
  }
}

}  // namespace quiver
