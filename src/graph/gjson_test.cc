#include "graph/gjson.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace quiver::graph {
namespace {

using ::testing::HasSubstr;

// GJSON's README document.
const Json& Doc() {
  static const Json doc = Json::parse(R"({
    "name": {"first": "Tom", "last": "Anderson"},
    "age": 37,
    "children": ["Sara", "Alex", "Jack"],
    "fav.movie": "Deer Hunter",
    "friends": [
      {"first": "Dale", "last": "Murphy", "age": 44, "nets": ["ig", "fb", "tw"]},
      {"first": "Roger", "last": "Craig", "age": 68, "nets": ["fb", "tw"]},
      {"first": "Jane", "last": "Murphy", "age": 47, "nets": ["ig", "tw"]}
    ]
  })");
  return doc;
}

std::string Get(std::string_view path, const Json& doc = Doc()) {
  auto parsed = GjsonPath::Parse(path);
  EXPECT_TRUE(parsed.ok()) << path << ": " << parsed.status().ToString();
  if (!parsed.ok()) return "<parse error>";
  auto value = parsed->Get(doc);
  return value ? value->dump() : "<none>";
}

std::string ParseError(std::string_view path) {
  auto parsed = GjsonPath::Parse(path);
  EXPECT_FALSE(parsed.ok()) << path;
  return parsed.ok() ? "" : parsed.status().message();
}

TEST(GjsonPath, ReadmeBasics) {
  EXPECT_EQ(Get("name.last"), R"("Anderson")");
  EXPECT_EQ(Get("age"), "37");
  EXPECT_EQ(Get("children"), R"(["Sara","Alex","Jack"])");
  EXPECT_EQ(Get("children.#"), "3");
  EXPECT_EQ(Get("children.1"), R"("Alex")");
  EXPECT_EQ(Get("child*.2"), R"("Jack")");
  EXPECT_EQ(Get("c?ildren.0"), R"("Sara")");
  EXPECT_EQ(Get(R"(fav\.movie)"), R"("Deer Hunter")");
  EXPECT_EQ(Get("friends.#.first"), R"(["Dale","Roger","Jane"])");
  EXPECT_EQ(Get("friends.1.last"), R"("Craig")");
}

TEST(GjsonPath, ReadmeQueries) {
  EXPECT_EQ(Get(R"(friends.#(last=="Murphy").first)"), R"("Dale")");
  EXPECT_EQ(Get(R"(friends.#(last=="Murphy")#.first)"), R"(["Dale","Jane"])");
  EXPECT_EQ(Get("friends.#(age>45)#.last"), R"(["Craig","Murphy"])");
  EXPECT_EQ(Get(R"(friends.#(first%"D*").last)"), R"("Murphy")");
  EXPECT_EQ(Get(R"(friends.#(first!%"D*").last)"), R"("Craig")");
  EXPECT_EQ(Get(R"(friends.#(nets.#(=="fb"))#.first)"), R"(["Dale","Roger"])");
  EXPECT_EQ(Get(R"(children.#(!%"*a*"))"), R"("Alex")");
  EXPECT_EQ(Get(R"(children.#(%"*a*")#)"), R"(["Sara","Jack"])");
}

TEST(GjsonPath, ComparisonOperators) {
  EXPECT_EQ(Get("friends.#(age==44).first"), R"("Dale")");
  EXPECT_EQ(Get("friends.#(age=44).first"), R"("Dale")");
  EXPECT_EQ(Get("friends.#(age!=44)#.first"), R"(["Roger","Jane"])");
  EXPECT_EQ(Get("friends.#(age<47)#.first"), R"(["Dale"])");
  EXPECT_EQ(Get("friends.#(age<=47)#.first"), R"(["Dale","Jane"])");
  EXPECT_EQ(Get("friends.#(age>=47)#.first"), R"(["Roger","Jane"])");
  EXPECT_EQ(Get("friends.#(age > 60).first"), R"("Roger")");  // spaces around the operator
  EXPECT_EQ(Get(R"(friends.#(first<"E")#.first)"), R"(["Dale"])");  // strings compare bytewise
  EXPECT_EQ(Get(R"(friends.#(age=="47").first)"), R"("Jane")");  // numbers parse the literal
}

TEST(GjsonPath, MissingThingsDoNotExist) {
  EXPECT_EQ(Get("name.middle"), "<none>");
  EXPECT_EQ(Get("children.3"), "<none>");
  EXPECT_EQ(Get("age.#"), "<none>");
  EXPECT_EQ(Get(R"(friends.#(last=="Nobody"))"), "<none>");
  EXPECT_EQ(Get("name.first.x"), "<none>");
  EXPECT_EQ(Get("friends.first"), "<none>");  // a key on an array selects nothing
}

TEST(GjsonPath, ExistsFollowsGjsonResultExists) {
  auto present_null = GjsonPath::Parse("a");
  ASSERT_TRUE(present_null.ok());
  EXPECT_TRUE(present_null->Exists(Json::parse(R"({"a": null})")));
  EXPECT_FALSE(present_null->Exists(Json::parse(R"({"b": 1})")));
  // `#(...)#` and `#.key` yield an array even when nothing matches, and an array exists.
  auto all = GjsonPath::Parse("instances.#(intval>10)#");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->Exists(Json::parse(R"({"instances": [{"intval": 1}]})")));
  auto first = GjsonPath::Parse("instances.#(intval>10)");
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->Exists(Json::parse(R"({"instances": [{"intval": 1}]})")));
  EXPECT_TRUE(first->Exists(Json::parse(R"({"instances": [{"intval": 1}, {"intval": 11}]})")));
  EXPECT_FALSE(first->Exists(Json::parse(R"({"inputs": []})")));
}

TEST(GjsonPath, KServeSampleConditions) {
  // docs/samples/graph/switch.yaml and the router's tests.
  Json dog = Json::parse(R"({"predictions": [{"label": "dog", "score": [0.8, 0.2]}]})");
  Json cat = Json::parse(R"({"predictions": [{"label": "cat", "score": [0.1, 0.9]}]})");
  auto is_dog = GjsonPath::Parse(R"(predictions.#(label=="dog"))");
  ASSERT_TRUE(is_dog.ok());
  EXPECT_TRUE(is_dog->Exists(dog));
  EXPECT_FALSE(is_dog->Exists(cat));
  auto model2 = GjsonPath::Parse(R"(instances.#(modelId=="2"))");
  ASSERT_TRUE(model2.ok());
  EXPECT_TRUE(model2->Exists(Json::parse(R"({"instances": [{"modelId": "2"}]})")));
  EXPECT_FALSE(model2->Exists(Json::parse(R"({"instances": [{"modelId": "1"}]})")));
}

TEST(GjsonPath, TildeComparesTruthiness) {
  Json vals = Json::parse(R"({"vals": [
    {"a": 1, "b": "data"}, {"a": 2, "b": true}, {"a": 3, "b": false}, {"a": 4, "b": "0"},
    {"a": 5, "b": 0}, {"a": 6, "b": "1"}, {"a": 7, "b": 1}, {"a": 8, "b": "true"},
    {"a": 9, "b": false}, {"a": 10, "b": null}, {"a": 11}]})");
  EXPECT_EQ(Get("vals.#(b==~true)#.a", vals), "[2,6,7,8]");
  EXPECT_EQ(Get("vals.#(b==~false)#.a", vals), "[1,3,4,5,9,10,11]");
}

TEST(GjsonPath, BooleansAndEscapes) {
  Json doc = Json::parse(R"({"flags": [{"on": true, "id": 1}, {"on": false, "id": 2}],
                             "a.b": {"c*d": 5}, "x": {"1": "one"}})");
  EXPECT_EQ(Get("flags.#(on==true).id", doc), "1");
  EXPECT_EQ(Get("flags.#(on!=true).id", doc), "2");
  EXPECT_EQ(Get("flags.#(on>false)#.id", doc), "[1]");
  EXPECT_EQ(Get(R"(a\.b.c\*d)", doc), "5");
  EXPECT_EQ(Get("x.1", doc), R"("one")");  // a numeric key on an object is a key
  EXPECT_EQ(Get("flags.#(on)#.id", doc), "[1,2]");  // no operator: the path exists
}

TEST(GjsonPath, MalformedPathsNameThePosition) {
  EXPECT_THAT(ParseError(R"(friends.#(last=="Murphy")"), HasSubstr("unterminated query"));
  EXPECT_THAT(ParseError("a..b"), HasSubstr("position 2: empty key"));
  EXPECT_THAT(ParseError("a."), HasSubstr("empty key"));
  EXPECT_THAT(ParseError("friends.#x"), HasSubstr("position 9"));
  EXPECT_THAT(ParseError("children|@reverse"), HasSubstr("pipes"));
  EXPECT_THAT(ParseError("@reverse"), HasSubstr("modifiers"));
  EXPECT_THAT(ParseError("[a,b]"), HasSubstr("multipaths"));
  EXPECT_THAT(ParseError("friends.#(age>>45)"), HasSubstr("position 14"));
  EXPECT_THAT(ParseError("friends.#(age==)"), HasSubstr("missing value"));
  EXPECT_THAT(ParseError("friends.#(first==Dale)"), HasSubstr("quoted string"));
  EXPECT_THAT(ParseError("friends.#()"), HasSubstr("empty query"));
  EXPECT_THAT(ParseError(R"(friends.#(first%D*))"), HasSubstr("position 16"));
  EXPECT_THAT(ParseError(""), HasSubstr("empty path"));
}

TEST(GjsonPatternMatch, WildcardsAndEscapes) {
  EXPECT_TRUE(GjsonPatternMatch("Dale", "D*"));
  EXPECT_TRUE(GjsonPatternMatch("Dale", "*"));
  EXPECT_TRUE(GjsonPatternMatch("Dale", "D?le"));
  EXPECT_FALSE(GjsonPatternMatch("Dale", "D?e"));
  EXPECT_TRUE(GjsonPatternMatch("abcabd", "*ab?"));
  EXPECT_FALSE(GjsonPatternMatch("abc", "*x*"));
  EXPECT_TRUE(GjsonPatternMatch("a*b", R"(a\*b)"));
  EXPECT_FALSE(GjsonPatternMatch("axb", R"(a\*b)"));
  EXPECT_TRUE(GjsonPatternMatch("", "*"));
  EXPECT_FALSE(GjsonPatternMatch("", "?"));
}

}  // namespace
}  // namespace quiver::graph
