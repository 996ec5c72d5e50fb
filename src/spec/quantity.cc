#include "spec/quantity.h"

#include <cmath>
#include <regex>

namespace quiver::spec {

StatusOr<double> ParseQuantity(std::string_view text) {
  // Kubernetes' grammar: a signed decimal number followed by a binary-SI suffix (Ki..Ei), a
  // decimal-SI suffix (n u m "" k M G T P E) or a decimal exponent (e3, E-2).
  static const std::regex kQuantity(
      "([+-]?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]"
      "+)?");
  std::string s(text);
  std::smatch match;
  if (!std::regex_match(s, match, kQuantity)) {
    return InvalidArgument("\"" + s +
                           "\" is not a quantity; expected a number with an optional suffix "
                           "such as 500m, 2, 1.5, 512Mi, 1Gi, 1G or 1e3");
  }
  double number = std::strtod(match[1].str().c_str(), nullptr);
  std::string suffix = match[2].str();
  double scale = 1;
  if (suffix.empty()) {
    scale = 1;
  } else if (suffix.size() == 2 && suffix[1] == 'i') {
    static constexpr std::string_view kBinary = "KMGTPE";
    scale = std::ldexp(1.0, 10 * static_cast<int>(kBinary.find(suffix[0]) + 1));
  } else if (suffix[0] == 'e' || suffix[0] == 'E') {
    scale = std::pow(10.0, std::strtod(suffix.c_str() + 1, nullptr));
  } else {
    switch (suffix[0]) {
      case 'n':
        scale = 1e-9;
        break;
      case 'u':
        scale = 1e-6;
        break;
      case 'm':
        scale = 1e-3;
        break;
      case 'k':
        scale = 1e3;
        break;
      case 'M':
        scale = 1e6;
        break;
      case 'G':
        scale = 1e9;
        break;
      case 'T':
        scale = 1e12;
        break;
      case 'P':
        scale = 1e15;
        break;
      case 'E':
        scale = 1e18;
        break;
    }
  }
  return number * scale;
}

StatusOr<std::string> QuantityText(const Json& value) {
  std::string text;
  if (value.is_string()) {
    text = value.get<std::string>();
  } else if (value.is_number()) {
    text = value.dump();
  } else {
    return InvalidArgument("must be a quantity such as \"500m\" or \"1Gi\"");
  }
  StatusOr<double> parsed = ParseQuantity(text);
  if (!parsed.ok()) return parsed.status();
  return text;
}

}  // namespace quiver::spec
