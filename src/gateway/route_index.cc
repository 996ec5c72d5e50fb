#include "gateway/route_index.h"

#include <array>

namespace quiver::gateway {

namespace {

bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// The forms of one host name part under which a service is reachable.
std::array<std::string, 5> HostForms(const std::string& part, const std::string& ns,
                                     const std::string& domain) {
  return {part + "." + ns + "." + domain, part + "." + ns, part + "." + ns + ".svc",
          part + "." + ns + ".svc.cluster.local", std::string()};
}

}  // namespace

bool IsExplainPath(std::string_view target) {
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  static constexpr std::string_view kPrefix = "/v1/models/";
  static constexpr std::string_view kSuffix = ":explain";
  if (path.size() <= kPrefix.size() + kSuffix.size() || !path.starts_with(kPrefix) ||
      !path.ends_with(kSuffix)) {
    return false;
  }
  std::string_view model =
      path.substr(kPrefix.size(), path.size() - kPrefix.size() - kSuffix.size());
  for (char c : model) {
    if (!IsWordChar(c)) return false;
  }
  return true;
}

RouteIndex::RouteIndex(const RouteTable& table, std::string domain) : domain_(std::move(domain)) {
  auto add = [&](const std::string& part, const std::string& ns, HostRoute route) {
    for (const auto& h : HostForms(part, ns, domain_)) {
      if (!h.empty()) hosts_.emplace(h, route);  // the first registration of a host wins
    }
  };
  // Plain service names first, so that a service literally named "x-predictor" keeps its
  // host over the predictor of a service "x".
  for (size_t i = 0; i < table.services.size(); ++i) {
    const auto& s = table.services[i];
    add(s.name, s.namespace_name, HostRoute{static_cast<int>(i), -1, ""});
  }
  for (size_t i = 0; i < table.services.size(); ++i) {
    const auto& s = table.services[i];
    for (int c = 0; c < kComponentCount; ++c) {
      if (s.components[c].empty()) continue;
      add(s.name + "-" + std::string(ComponentName(static_cast<Component>(c))), s.namespace_name,
          HostRoute{static_cast<int>(i), c, ""});
    }
  }
  for (size_t i = 0; i < table.services.size(); ++i) {
    const auto& s = table.services[i];
    const Traffic& entry = s.has(Component::kTransformer) ? s.component(Component::kTransformer)
                                                          : s.component(Component::kPredictor);
    for (const auto& rev : entry) {
      for (const std::string& tag : rev.tags) {
        add(tag + "-" + s.name, s.namespace_name, HostRoute{static_cast<int>(i), -1, tag});
      }
    }
    // Knative's tag URLs name the component's own service: {tag}-{name}-{component}.
    for (int c = 0; c < kComponentCount; ++c) {
      std::string component(ComponentName(static_cast<Component>(c)));
      for (const auto& rev : s.components[c]) {
        for (const std::string& tag : rev.tags) {
          add(tag + "-" + s.name + "-" + component, s.namespace_name,
              HostRoute{static_cast<int>(i), c, tag});
        }
      }
    }
  }
  for (size_t i = 0; i < table.graphs.size(); ++i) {
    const auto& g = table.graphs[i];
    add(g.name, g.namespace_name, HostRoute{-1, -1, "", static_cast<int>(i)});
  }
}

const HostRoute* RouteIndex::Find(std::string_view host) const {
  // Host is case-insensitive; clients send lowercase in practice, so copy only when needed.
  for (char c : host) {
    if (c >= 'A' && c <= 'Z') {
      std::string lower(host);
      for (auto& ch : lower) {
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
      }
      auto it = hosts_.find(std::string_view(lower));
      return it == hosts_.end() ? nullptr : &it->second;
    }
  }
  auto it = hosts_.find(host);
  return it == hosts_.end() ? nullptr : &it->second;
}

StatusOr<Resolved> RouteIndex::Resolve(std::string_view host, std::string_view target) const {
  if (target.starts_with(kPathFormPrefix)) {
    std::string_view rest = target.substr(kPathFormPrefix.size());
    size_t slash = rest.find('/');
    std::string_view ns = rest.substr(0, slash);
    std::string_view after = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
    size_t end = after.find_first_of("/?");
    std::string_view part = after.substr(0, end);
    if (ns.empty() || part.empty()) {
      return NotFound("path '" + std::string(target) +
                      "': expected /serving/{namespace}/{name}/{path}, e.g. "
                      "/serving/default/iris/v2/models/iris/infer");
    }
    std::string_view forwarded = end == std::string_view::npos ? "/" : after.substr(end);
    thread_local std::string key;  // reused: no allocation per request once warm
    key.assign(part);
    key.push_back('.');
    key.append(ns);
    const HostRoute* route = Find(key);
    if (route == nullptr) {
      return NotFound("no InferenceService '" + std::string(part) + "' in namespace '" +
                      std::string(ns) + "' (path '" + std::string(target) + "')");
    }
    if (forwarded.front() == '?') {
      // "/serving/ns/name?x" forwards "/?x".
      thread_local std::string with_slash;
      with_slash.assign("/");
      with_slash.append(forwarded);
      forwarded = with_slash;
    }
    return Resolved{route, forwarded};
  }
  std::string_view name = host;
  if (!name.empty() && name.front() == '[') {
    name = name.substr(0, name.find(']') + 1);
  } else if (size_t colon = name.rfind(':'); colon != std::string_view::npos) {
    name = name.substr(0, colon);
  }
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);  // fully qualified form
  const HostRoute* route = Find(name);
  if (route == nullptr) {
    if (name.empty()) {
      return NotFound("no Host header: send Host {name}.{namespace}." + domain_ +
                      " or use the path /serving/{namespace}/{name}/...");
    }
    return NotFound("no InferenceService for host '" + std::string(name) +
                    "': expected {name}.{namespace}." + domain_ +
                    " or the path /serving/{namespace}/{name}/...");
  }
  return Resolved{route, target};
}

StatusOr<Component> RouteIndex::SelectComponent(const ServiceRoute& service, const HostRoute& route,
                                                std::string_view target) {
  if (route.component >= 0) {
    auto c = static_cast<Component>(route.component);
    if (!service.has(c)) {
      return NotFound("InferenceService " + service.namespace_name + "/" + service.name +
                      " has no " + std::string(ComponentName(c)));
    }
    return c;
  }
  // KServe's ingress sends only :explain paths to the explainer; without an explainer they go
  // to the entry component like any path, whose model server answers them (501 when the model
  // has no explainer).
  if (service.has(Component::kExplainer) && IsExplainPath(target)) return Component::kExplainer;
  if (service.has(Component::kTransformer)) return Component::kTransformer;
  return Component::kPredictor;
}

}  // namespace quiver::gateway
