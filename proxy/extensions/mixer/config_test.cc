#include "proxy/extensions/mixer/config.h"

#include <gtest/gtest.h>

namespace mixer_filter {
namespace {

// What Pilot writes for an inbound sidecar (json_format.MessageToJson of HttpClientConfig).
constexpr char kInbound[] = R"({
  "transport": {
    "networkFailPolicy": {"policy": "FAIL_CLOSE", "baseRetryWait": "0.080s", "maxRetryWait": "1s"},
    "checkCluster": "outbound|9091||127.0.0.1",
    "reportCluster": "outbound|9091||127.0.0.1",
    "reportBatchMaxEntries": 100,
    "reportBatchMaxTime": "0.5s"
  },
  "serviceConfigs": {
    "inbound|9080||": {
      "mixerAttributes": {"attributes": {
        "destination.service.host": {"stringValue": "ratings.default.svc.cluster.local"}}},
      "quotaSpec": [{"rules": [{"quotas": [{"quota": "requestcountquota", "charge": 1}]}]}]
    }
  },
  "defaultDestinationService": "inbound|9080||",
  "mixerAttributes": {"attributes": {
    "destination.uid": {"stringValue": "kubernetes://ratings-v1.default"},
    "destination.port": {"int64Value": "9080"},
    "destination.ip": {"bytesValue": "fwABBw=="},
    "destination.labels": {"stringMapValue": {"entries": {"app": "ratings", "version": "v1"}}},
    "context.reporter.kind": {"stringValue": "inbound"},
    "check.cache_hit": {"boolValue": false},
    "x.double": {"doubleValue": 1.5},
    "x.duration": {"durationValue": "1.500s"},
    "x.time": {"timestampValue": "2018-01-02T03:04:05.5Z"}
  }}
})";

TEST(HttpClientConfig, ReadsWhatPilotWrites) {
  HttpClientConfig config;
  std::string error;
  ASSERT_TRUE(ParseHttpClientConfig(kInbound, &config, &error)) << error;
  EXPECT_FALSE(config.transport.network_fail_policy.fail_open);
  EXPECT_EQ(config.transport.network_fail_policy.base_retry_wait_ms, 80);
  EXPECT_EQ(config.transport.check_cluster, "outbound|9091||127.0.0.1");
  EXPECT_EQ(config.transport.report_batch_max_entries, 100u);
  EXPECT_EQ(config.transport.report_batch_max_time_ms, 500);
  EXPECT_EQ(config.default_destination_service, "inbound|9080||");
  const ServiceConfig& service = config.service_configs.at("inbound|9080||");
  EXPECT_EQ(*service.mixer_attributes.GetString("destination.service.host"),
            "ratings.default.svc.cluster.local");
  ASSERT_EQ(service.quota_spec.size(), 1u);
  ASSERT_EQ(service.quota_spec[0].rules[0].quotas.size(), 1u);
  EXPECT_EQ(service.quota_spec[0].rules[0].quotas[0].name, "requestcountquota");
  const auto& attrs = config.mixer_attributes;
  EXPECT_EQ(std::get<int64_t>(*attrs.Get("destination.port")), 9080);
  EXPECT_EQ(std::get<mixerclient::Bytes>(*attrs.Get("destination.ip")).data, std::string("\x7f\x00\x01\x07", 4));
  EXPECT_EQ(std::get<mixerclient::StringMap>(*attrs.Get("destination.labels")).at("version"), "v1");
  EXPECT_EQ(std::get<bool>(*attrs.Get("check.cache_hit")), false);
  EXPECT_EQ(std::get<double>(*attrs.Get("x.double")), 1.5);
  EXPECT_EQ(std::get<mixerclient::Duration>(*attrs.Get("x.duration")), (mixerclient::Duration{1, 500000000}));
  EXPECT_EQ(std::get<mixerclient::Timestamp>(*attrs.Get("x.time")),
            (mixerclient::Timestamp{1514862245, 500000000}));
}

TEST(HttpClientConfig, AcceptsProtoFieldNamesAndDefaults) {
  HttpClientConfig config;
  std::string error;
  ASSERT_TRUE(ParseHttpClientConfig(R"({"mixer_attributes": {}, "ignore_forwarded_attributes": true})",
                                    &config, &error))
      << error;
  EXPECT_TRUE(config.ignore_forwarded_attributes);
  EXPECT_TRUE(config.transport.network_fail_policy.fail_open);  // FAIL_OPEN is the zero value
  ASSERT_TRUE(ParseHttpClientConfig("{}", &config, &error)) << error;
}

TEST(HttpClientConfig, RefusesMistakesNamingTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"not json", "config is not valid JSON"},
      {"[]", "config: expected an object"},
      {R"({"transprot": {}})", "transprot: unknown field"},
      {R"({"transport": {"networkFailPolicy": {"policy": "FAIL_SOMETIMES"}}})",
       "transport.networkFailPolicy.policy: must be FAIL_OPEN or FAIL_CLOSE"},
      {R"({"transport": {"reportBatchMaxTime": "1m"}})", "transport.reportBatchMaxTime: expected a duration"},
      {R"({"transport": {"reportBatchMaxEntries": -1}})", "transport.reportBatchMaxEntries: '-1' is out of range"},
      {R"({"transport": {"disableCheckCache": "yes"}})", "transport.disableCheckCache: expected a boolean"},
      {R"({"mixerAttributes": {"attributes": {"a": {}}}})", "mixerAttributes.attributes[a]: exactly one value"},
      {R"({"mixerAttributes": {"attributes": {"a": {"int64Value": "1.5"}}}})", "is not an integer"},
      {R"({"mixerAttributes": {"attributes": {"a": {"bytesValue": "!!"}}}})", "not base64"},
      {R"({"defaultDestinationService": "x"})", "'x' is not a key of serviceConfigs"},
      {R"({"serviceConfigs": {"s": {"quotaSpec": [{"rules": [{"quotas": [{"charge": 1}]}]}]}}})",
       "serviceConfigs[s].quotaSpec[0].rules[0].quotas[0].quota: must name a quota"},
      {R"({"serviceConfigs": {"s": {"quotaSpec": [{"rules": [{"match": [{"clause": {"a": {"regex": ".*"}}}]}]}]}}})",
       "regex matches are not supported"},
  };
  for (const auto& [json, message] : cases) {
    HttpClientConfig config;
    std::string error;
    EXPECT_FALSE(ParseHttpClientConfig(json, &config, &error)) << json;
    EXPECT_NE(error.find(message), std::string::npos) << json << " -> " << error;
  }
}

TEST(QuotaSpec, RulesApplyByTheirStringMatches) {
  HttpClientConfig config;
  std::string error;
  ASSERT_TRUE(ParseHttpClientConfig(R"({"serviceConfigs": {"s": {"quotaSpec": [{"rules": [
      {"quotas": [{"quota": "always"}]},
      {"match": [{"clause": {"request.path": {"prefix": "/api"}, "request.method": {"exact": "POST"}}},
                 {"clause": {"request.headers": {"exact": "never a string"}}}],
       "quotas": [{"quota": "api-posts", "charge": 3}]}
  ]}]}}})",
                                    &config, &error))
      << error;
  const QuotaSpec& spec = config.service_configs.at("s").quota_spec.at(0);
  mixerclient::Attributes attributes;
  attributes.SetString("request.path", "/api/books");
  attributes.SetString("request.method", "POST");
  std::vector<mixerclient::QuotaRequirement> quotas;
  spec.AddRequirements(attributes, &quotas);
  ASSERT_EQ(quotas.size(), 2u);
  EXPECT_EQ(quotas[0].name, "always");
  EXPECT_EQ(quotas[0].amount, 1);  // no charge given: 1
  EXPECT_EQ(quotas[1].name, "api-posts");
  EXPECT_EQ(quotas[1].amount, 3);
  attributes.SetString("request.method", "GET");
  quotas.clear();
  spec.AddRequirements(attributes, &quotas);
  EXPECT_EQ(quotas.size(), 1u);
}

TEST(TcpClientConfig, ReadsTheReportIntervalWithIstiosFloor) {
  TcpClientConfig config;
  std::string error;
  ASSERT_TRUE(ParseTcpClientConfig(R"({"disableCheckCalls": true})", &config, &error)) << error;
  EXPECT_TRUE(config.disable_check_calls);
  EXPECT_EQ(config.report_interval_ms, 10000);
  ASSERT_TRUE(ParseTcpClientConfig(R"({"reportInterval": "0.2s"})", &config, &error)) << error;
  EXPECT_EQ(config.report_interval_ms, 1000);
  EXPECT_FALSE(ParseTcpClientConfig(R"({"serviceConfigs": {}})", &config, &error));
  EXPECT_NE(error.find("serviceConfigs: unknown field"), std::string::npos) << error;
}

}  // namespace
}  // namespace mixer_filter
