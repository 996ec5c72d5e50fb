#include "gateway/route_table.h"

#include <nlohmann/json.hpp>
#include <set>

#include "http/client.h"

namespace quiver::gateway {

std::string_view ComponentName(Component c) {
  switch (c) {
    case Component::kPredictor:
      return "predictor";
    case Component::kTransformer:
      return "transformer";
    case Component::kExplainer:
      return "explainer";
  }
  return "unknown";
}

std::string Endpoint::ToString() const { return http::Backend::Make(host, port).key; }

namespace {

// A DNS-1123 label, as Kubernetes requires of names that become host names.
bool IsDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return s.front() != '-' && s.back() != '-';
}

}  // namespace

Status ValidateRouteTable(const RouteTable& table) {
  std::set<std::pair<std::string, std::string>> seen;
  for (size_t si = 0; si < table.services.size(); ++si) {
    const ServiceRoute& s = table.services[si];
    std::string path = "services[" + std::to_string(si) + "]";
    if (!IsDnsLabel(s.namespace_name)) {
      return InvalidArgument(path + ".namespace: '" + s.namespace_name +
                             "' is not a DNS label (lowercase letters, digits, '-')");
    }
    if (!IsDnsLabel(s.name)) {
      return InvalidArgument(path + ".name: '" + s.name +
                             "' is not a DNS label (lowercase letters, digits, '-')");
    }
    if (!seen.emplace(s.namespace_name, s.name).second) {
      return InvalidArgument(path + ": service " + s.namespace_name + "/" + s.name +
                             " appears twice");
    }
    for (int ci = 0; ci < kComponentCount; ++ci) {
      const Traffic& traffic = s.components[ci];
      if (traffic.empty()) continue;
      std::string cpath = path + "." + std::string(ComponentName(static_cast<Component>(ci)));
      int total = 0;
      std::set<std::string> names;
      std::set<std::string> tags;
      for (size_t ri = 0; ri < traffic.size(); ++ri) {
        const RevisionRoute& r = traffic[ri];
        std::string rpath = cpath + "[" + std::to_string(ri) + "]";
        if (r.name.empty()) return InvalidArgument(rpath + ".revision: must not be empty");
        if (!names.insert(r.name).second) {
          return InvalidArgument(rpath + ".revision: '" + r.name + "' appears twice");
        }
        if (r.percent < 0 || r.percent > 100) {
          return InvalidArgument(rpath + ".percent: must be in 0..100, got " +
                                 std::to_string(r.percent));
        }
        total += r.percent;
        for (const std::string& tag : r.tags) {
          if (!IsDnsLabel(tag)) {
            return InvalidArgument(rpath + ".tags: '" + tag + "' is not a DNS label");
          }
          if (!tags.insert(tag).second) {
            return InvalidArgument(rpath + ".tags: '" + tag + "' is used twice");
          }
        }
        if (r.activator_queue_depth < 0) {
          return InvalidArgument(rpath + ".activator_queue_depth: must be >= 0, got " +
                                 std::to_string(r.activator_queue_depth));
        }
        if (r.container_concurrency < 0) {
          return InvalidArgument(rpath +
                                 ".container_concurrency: must be >= 0 (0 = unlimited), "
                                 "got " +
                                 std::to_string(r.container_concurrency));
        }
        if (r.queue_depth < 0) {
          return InvalidArgument(rpath + ".queue_depth: must be >= 0, got " +
                                 std::to_string(r.queue_depth));
        }
        if (r.timeout.count() <= 0) {
          return InvalidArgument(rpath + ".timeout: must be positive, got " +
                                 std::to_string(r.timeout.count()) + " ms");
        }
        std::set<std::string> eps;
        for (size_t ei = 0; ei < r.endpoints.size(); ++ei) {
          const Endpoint& e = r.endpoints[ei];
          std::string epath = rpath + ".endpoints[" + std::to_string(ei) + "]";
          if (e.host.empty() || e.port == 0) {
            return InvalidArgument(epath + ": expected host and a port in 1..65535, got '" +
                                   e.ToString() + "'");
          }
          if (!eps.insert(e.ToString()).second) {
            return InvalidArgument(epath + ": '" + e.ToString() + "' appears twice");
          }
        }
      }
      if (total != 100) {
        return InvalidArgument(cpath + ": traffic percents must sum to 100, got " +
                               std::to_string(total));
      }
    }
  }
  std::set<std::pair<std::string, std::string>> graphs;
  for (size_t gi = 0; gi < table.graphs.size(); ++gi) {
    const GraphRoute& g = table.graphs[gi];
    std::string path = "graphs[" + std::to_string(gi) + "]";
    if (!IsDnsLabel(g.namespace_name)) {
      return InvalidArgument(path + ".namespace: '" + g.namespace_name + "' is not a DNS label");
    }
    if (!IsDnsLabel(g.name)) {
      return InvalidArgument(path + ".name: '" + g.name + "' is not a DNS label");
    }
    if (!graphs.emplace(g.namespace_name, g.name).second) {
      return InvalidArgument(path + ": graph " + g.namespace_name + "/" + g.name +
                             " appears twice");
    }
    if (!g.handler || !*g.handler) return InvalidArgument(path + ".handler: must be set");
  }
  return Status::Ok();
}

bool RevisionRoute::has_tag(std::string_view tag) const {
  for (const std::string& t : tags) {
    if (t == tag) return true;
  }
  return false;
}

int PickRevision(const Traffic& traffic, double u) {
  int total = 0;
  int last = -1;
  for (size_t i = 0; i < traffic.size(); ++i) {
    if (traffic[i].percent > 0) {
      total += traffic[i].percent;
      last = static_cast<int>(i);
    }
  }
  if (total <= 0) return -1;
  double target = u * total;
  int cumulative = 0;
  for (size_t i = 0; i < traffic.size(); ++i) {
    if (traffic[i].percent <= 0) continue;
    cumulative += traffic[i].percent;
    if (target < cumulative) return static_cast<int>(i);
  }
  return last;  // u at (or rounded to) 1
}

namespace {

using json = nlohmann::json;

Status Expect(const json& j, const std::string& path, bool ok, const char* what) {
  if (ok) return Status::Ok();
  return InvalidArgument(path + ": expected " + what + ", got " + std::string(j.type_name()));
}

StatusOr<Traffic> TrafficFromJson(const json& j, const std::string& path) {
  QUIVER_RETURN_IF_ERROR(Expect(j, path, j.is_array(), "an array of revisions"));
  Traffic traffic;
  for (size_t i = 0; i < j.size(); ++i) {
    const json& r = j[i];
    std::string rpath = path + "[" + std::to_string(i) + "]";
    QUIVER_RETURN_IF_ERROR(Expect(r, rpath, r.is_object(), "an object"));
    RevisionRoute rev;
    for (auto it = r.begin(); it != r.end(); ++it) {
      const std::string& key = it.key();
      const json& v = it.value();
      std::string fpath = rpath + "." + key;
      if (key == "revision") {
        QUIVER_RETURN_IF_ERROR(Expect(v, fpath, v.is_string(), "a string"));
        rev.name = v.get<std::string>();
      } else if (key == "percent") {
        QUIVER_RETURN_IF_ERROR(Expect(v, fpath, v.is_number_integer(), "an integer"));
        rev.percent = v.get<int>();
      } else if (key == "tag") {
        QUIVER_RETURN_IF_ERROR(Expect(v, fpath, v.is_string(), "a string"));
        if (!v.get<std::string>().empty()) rev.tags.push_back(v.get<std::string>());
      } else if (key == "tags") {
        QUIVER_RETURN_IF_ERROR(Expect(v, fpath, v.is_array(), "an array of strings"));
        for (const json& t : v) {
          QUIVER_RETURN_IF_ERROR(Expect(t, fpath, t.is_string(), "an array of strings"));
          rev.tags.push_back(t.get<std::string>());
        }
      } else if (key == "scale_from_zero") {
        QUIVER_RETURN_IF_ERROR(Expect(v, fpath, v.is_boolean(), "a boolean"));
        rev.scale_from_zero = v.get<bool>();
      } else if (key == "container_concurrency") {
        QUIVER_RETURN_IF_ERROR(Expect(v, fpath, v.is_number_integer(), "an integer"));
        rev.container_concurrency = v.get<int>();
      } else if (key == "queue_depth") {
        QUIVER_RETURN_IF_ERROR(Expect(v, fpath, v.is_number_integer(), "an integer"));
        rev.queue_depth = v.get<int>();
      } else if (key == "timeout_seconds") {
        QUIVER_RETURN_IF_ERROR(Expect(v, fpath, v.is_number(), "a number of seconds"));
        rev.timeout = std::chrono::milliseconds(static_cast<int64_t>(v.get<double>() * 1000));
      } else if (key == "endpoints") {
        QUIVER_RETURN_IF_ERROR(Expect(v, fpath, v.is_array(), "an array of \"host:port\""));
        for (size_t ei = 0; ei < v.size(); ++ei) {
          std::string epath = fpath + "[" + std::to_string(ei) + "]";
          QUIVER_RETURN_IF_ERROR(Expect(v[ei], epath, v[ei].is_string(), "\"host:port\""));
          auto b = http::Backend::Parse(v[ei].get<std::string>());
          if (!b.ok()) return b.status().WithPrefix(epath);
          rev.endpoints.push_back(Endpoint{b->host, b->port});
        }
      } else {
        return InvalidArgument(fpath +
                               ": unknown field (expected revision, percent, tag, tags, endpoints, "
                               "container_concurrency, queue_depth, timeout_seconds, "
                               "scale_from_zero)");
      }
    }
    traffic.push_back(std::move(rev));
  }
  return traffic;
}

}  // namespace

StatusOr<RouteTable> RouteTableFromJson(std::string_view text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    return InvalidArgument(std::string("route table: invalid JSON: ") + e.what());
  }
  QUIVER_RETURN_IF_ERROR(Expect(doc, "route table", doc.is_object(), "an object"));
  RouteTable table;
  auto services = doc.find("services");
  if (services == doc.end()) return InvalidArgument("services: missing (expected an array)");
  QUIVER_RETURN_IF_ERROR(Expect(*services, "services", services->is_array(), "an array"));
  for (size_t i = 0; i < services->size(); ++i) {
    const json& s = (*services)[i];
    std::string path = "services[" + std::to_string(i) + "]";
    QUIVER_RETURN_IF_ERROR(Expect(s, path, s.is_object(), "an object"));
    ServiceRoute service;
    for (auto it = s.begin(); it != s.end(); ++it) {
      const std::string& key = it.key();
      const json& v = it.value();
      std::string fpath = path + "." + key;
      if (key == "namespace" || key == "name") {
        QUIVER_RETURN_IF_ERROR(Expect(v, fpath, v.is_string(), "a string"));
        (key == "name" ? service.name : service.namespace_name) = v.get<std::string>();
      } else if (key == "predictor" || key == "transformer" || key == "explainer") {
        Component c = key == "predictor"     ? Component::kPredictor
                      : key == "transformer" ? Component::kTransformer
                                             : Component::kExplainer;
        QUIVER_ASSIGN_OR_RETURN(service.component(c), TrafficFromJson(v, fpath));
      } else {
        return InvalidArgument(fpath +
                               ": unknown field (expected namespace, name, "
                               "predictor, transformer, explainer)");
      }
    }
    table.services.push_back(std::move(service));
  }
  QUIVER_RETURN_IF_ERROR(ValidateRouteTable(table));
  return table;
}

}  // namespace quiver::gateway
