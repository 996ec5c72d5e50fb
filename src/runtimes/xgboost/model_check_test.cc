#include "runtimes/xgboost/model_check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace quiver::xgboost_runtime {
namespace {

using ::testing::HasSubstr;

const std::filesystem::path kSourceDir = QUIVER_SOURCE_DIR;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A one-split tree over 2 features, in XGBoost's schema; each field can be overridden.
struct TreeJson {
  std::string id = "0";
  std::string num_nodes = "3";
  std::string left = "[1, -1, -1]";
  std::string right = "[2, -1, -1]";
  std::string parents = "[2147483647, 0, 0]";
  std::string split = "[1, 0, 0]";
  std::string sizes_of_three = "[0, 0, 0]";
  std::string categorical;  // extra fields, e.g. split_type and categories_*

  std::string Text() const {
    return R"({"id": )" + id + R"(, "tree_param": {"num_nodes": ")" + num_nodes +
           R"(", "num_deleted": "0"}, "left_children": )" + left + R"(, "right_children": )" +
           right + R"(, "parents": )" + parents + R"(, "split_indices": )" + split +
           // XGBoost writes NaN and Infinity for non-finite floats.
           R"(, "split_conditions": [0.5, NaN, -Infinity], "loss_changes": )" + sizes_of_three +
           R"(, "sum_hessian": [0, 0, 0], "base_weights": [0, 0, 0], "default_left": [1, 0, 0])" +
           categorical + "}";
  }
};

std::string ModelJson(const std::vector<TreeJson>& trees, std::string tree_info = "[0]",
                      std::string num_parallel_tree = "1", std::string num_class = "0") {
  std::string text;
  for (const TreeJson& t : trees) text += (text.empty() ? "" : ", ") + t.Text();
  return R"({"learner": {"learner_model_param": {"num_feature": "2", "num_class": ")" + num_class +
         R"(", "num_target": "1"}, "gradient_booster": {"name": "gbtree", "model": )"
         R"({"gbtree_model_param": {"num_trees": ")" +
         std::to_string(trees.size()) + R"(", "num_parallel_tree": ")" + num_parallel_tree +
         R"("}, "tree_info": )" + tree_info + R"(, "trees": [)" + text + "]}}}}";
}

Status CheckTreeJson(const TreeJson& tree) { return CheckModelJson(ModelJson({tree})).status(); }

TEST(ModelCheckTest, AcceptsAWellFormedModel) {
  StatusOr<ModelStructure> s = CheckModelJson(ModelJson({TreeJson{}}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->booster, "gbtree");
  EXPECT_EQ(s->num_features, 2);
  EXPECT_EQ(s->num_trees, 1);
  EXPECT_EQ(s->num_groups, 1);
}

TEST(ModelCheckTest, AcceptsTheExampleModels) {
  StatusOr<ModelStructure> iris =
      CheckModelJson(ReadFile(kSourceDir / "examples/models/xgboost-iris/model.json"));
  ASSERT_TRUE(iris.ok()) << iris.status().ToString();
  EXPECT_EQ(iris->num_trees, 60);
  EXPECT_EQ(iris->num_groups, 3);
  EXPECT_EQ(iris->num_features, 4);
  StatusOr<ModelStructure> regressor =
      CheckModelJson(ReadFile(kSourceDir / "examples/models/xgboost-regressor/model.json"));
  ASSERT_TRUE(regressor.ok()) << regressor.status().ToString();
  EXPECT_EQ(regressor->num_trees, 100);
  StatusOr<ModelStructure> linear =
      CheckModelJson(ReadFile(kSourceDir / "src/runtimes/xgboost/testdata/linear.json"));
  ASSERT_TRUE(linear.ok()) << linear.status().ToString();
  EXPECT_EQ(linear->booster, "gblinear");
  EXPECT_EQ(linear->num_trees, 0);
}

// Each of these made XGBoost 1.7 hang, crash or read out of bounds in the fuzzing that found them.
TEST(ModelCheckTest, RejectsACycle) {
  TreeJson t;
  t.left = "[1, 0, -1]";
  t.right = "[2, 1, -1]";
  Status s = CheckTreeJson(t);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("tree 0: node 0 is its own ancestor"));
}

TEST(ModelCheckTest, RejectsChildrenOutsideTheTree) {
  TreeJson t;
  t.left = "[41, -1, -1]";
  t.right = "[-1, -1, -1]";
  EXPECT_THAT(CheckTreeJson(t).message(),
              HasSubstr("tree 0, node 0: children 41, -1 are outside the tree's 3 nodes"));
  t.left = "[2, -1, -1]";  // the predictor would step to left + 1 == 3
  t.right = "[2, -1, -1]";
  EXPECT_FALSE(CheckTreeJson(t).ok());
}

TEST(ModelCheckTest, RejectsASplitOnAFeatureTheModelLacks) {
  TreeJson t;
  t.split = "[2, 0, 0]";
  EXPECT_THAT(CheckTreeJson(t).message(), HasSubstr("splits on feature 2 of 2"));
  t.split = "[-1, 0, 0]";
  EXPECT_FALSE(CheckTreeJson(t).ok());
}

TEST(ModelCheckTest, RejectsAParentOutsideTheTree) {
  TreeJson t;
  t.parents = "[2147483647, 7, 0]";
  EXPECT_THAT(CheckTreeJson(t).message(), HasSubstr("node 1 has parent 7"));
  // The top bit only marks a left child.
  t.parents = "[2147483647, -2147483648, 0]";
  EXPECT_TRUE(CheckTreeJson(t).ok());
}

TEST(ModelCheckTest, RejectsArraysOfTheWrongLength) {
  TreeJson t;
  t.sizes_of_three = "[0, 0]";
  EXPECT_THAT(CheckTreeJson(t).message(), HasSubstr("loss_changes has 2 entries for 3 nodes"));
  t = TreeJson{};
  t.num_nodes = "4";
  EXPECT_THAT(CheckTreeJson(t).message(), HasSubstr("num_nodes 4"));
}

TEST(ModelCheckTest, RejectsBadCategoricalSplits) {
  TreeJson t;
  t.categorical =
      R"(, "split_type": [1, 0, 0], "categories_nodes": [0], "categories_segments": [0], )"
      R"("categories_sizes": [2], "categories": [0, 3])";
  EXPECT_TRUE(CheckTreeJson(t).ok()) << CheckTreeJson(t).ToString();
  t.categorical =
      R"(, "split_type": [1, 0, 0], "categories_nodes": [0], "categories_segments": [1], )"
      R"("categories_sizes": [2], "categories": [0, 3])";
  EXPECT_THAT(CheckTreeJson(t).message(), HasSubstr("categorical split 0 is out of range"));
  t.categorical =
      R"(, "split_type": [1, 0, 0], "categories_nodes": [0], "categories_segments": [0], )"
      R"("categories_sizes": [1], "categories": [-4])";
  EXPECT_THAT(CheckTreeJson(t).message(), HasSubstr("category -4"));
  t.categorical = R"(, "split_type": [1, 0])";
  EXPECT_FALSE(CheckTreeJson(t).ok());
}

TEST(ModelCheckTest, RejectsBadTreeBookkeeping) {
  TreeJson second;
  second.id = "0";  // two trees with id 0 would leave tree 1 null
  EXPECT_THAT(CheckModelJson(ModelJson({TreeJson{}, second}, "[0, 0]")).status().message(),
              HasSubstr("tree 1: missing, duplicate or out-of-range id"));
  second.id = "1";
  EXPECT_TRUE(CheckModelJson(ModelJson({TreeJson{}, second}, "[0, 0]")).ok());
  EXPECT_THAT(CheckModelJson(ModelJson({TreeJson{}}, "[1]")).status().message(),
              HasSubstr("output group 1 of 1"));
  EXPECT_TRUE(CheckModelJson(ModelJson({TreeJson{}}, "[2]", "1", "3")).ok());
  EXPECT_THAT(CheckModelJson(ModelJson({TreeJson{}}, "[0, 0]")).status().message(),
              HasSubstr("1 trees, num_trees 1, 2 tree_info"));
  EXPECT_THAT(CheckModelJson(ModelJson({TreeJson{}}, "[0]", "0")).status().message(),
              HasSubstr("num_parallel_tree 0"));
}

TEST(ModelCheckTest, RejectsWhatIsNotAModel) {
  EXPECT_THAT(CheckModelJson("").status().message(), HasSubstr("not valid JSON"));
  EXPECT_THAT(CheckModelJson("{\"learner\": ").status().message(), HasSubstr("not valid JSON"));
  EXPECT_THAT(CheckModelJson("[1, 2]").status().message(), HasSubstr("no learner"));
  std::string other = ModelJson({TreeJson{}});
  other.replace(other.find("gbtree"), 6, "forest");
  EXPECT_THAT(CheckModelJson(other).status().message(), HasSubstr("unknown booster 'forest'"));
}

TEST(UbjToJsonTest, ReadsXgboostsUbjson) {
  StatusOr<std::string> json =
      UbjToJson(ReadFile(kSourceDir / "src/runtimes/xgboost/testdata/iris.ubj"));
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  StatusOr<ModelStructure> s = CheckModelJson(*json);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->num_trees, 60);
  EXPECT_EQ(s->num_features, 4);
}

TEST(UbjToJsonTest, RejectsLengthsPastTheEnd) {
  const std::string ubj = ReadFile(kSourceDir / "src/runtimes/xgboost/testdata/iris.ubj");
  ASSERT_GT(ubj.size(), 100u);
  EXPECT_FALSE(UbjToJson(ubj.substr(0, ubj.size() / 2)).ok());
  // {"k": "v"} with the value's length raised from 1 to 2^40.
  std::string s = std::string("{L") + std::string(7, '\0') + "\x01" + "kSL" + std::string(7, '\0') +
                  "\x01" + "v}";
  ASSERT_TRUE(UbjToJson(s).ok()) << UbjToJson(s).status().ToString();
  EXPECT_EQ(*UbjToJson(s), R"({"k":"v"})");
  s[13] = '\x01';
  Status status = UbjToJson(s).status();
  EXPECT_THAT(status.message(), HasSubstr("runs past the end"));
  // A typed array claiming more int32s than there are bytes.
  const std::string typed = std::string("[$l#L") + std::string(7, '\0') + "\x03" + "\0\0\0\x01";
  EXPECT_THAT(UbjToJson(typed).status().message(), HasSubstr("runs past the end"));
}

TEST(UbjToJsonTest, RejectsDeepNesting) {
  EXPECT_THAT(UbjToJson(std::string(100000, '[')).status().message(), HasSubstr("too deep"));
  EXPECT_TRUE(UbjToJson(std::string(50, '[') + std::string(50, ']')).ok());
}

}  // namespace
}  // namespace quiver::xgboost_runtime
