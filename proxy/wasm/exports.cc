// The module's exports: every proxy_on_* callback of ABI 0.2.1 routed to its context object.
// Only in the wasm32 build; the filters register their root factories (context.h).
#include <cstdlib>
#include <memory>
#include <string>
#include <unordered_map>

#include "proxy/wasm/abi_host.h"
#include "proxy/wasm/context.h"

#define PROXY_WASM_EXPORT(name) extern "C" __attribute__((export_name(#name)))

namespace proxy_wasm {
namespace {

struct Contexts {
  std::unordered_map<uint32_t, std::unique_ptr<RootContext>> roots;
  std::unordered_map<uint32_t, RootContext*> stream_roots;  // stream id -> its root
};

Contexts& All() {
  static Contexts* contexts = new Contexts();
  return *contexts;
}

RootContext* Root(uint32_t id) {
  auto it = All().roots.find(id);
  return it == All().roots.end() ? nullptr : it->second.get();
}

StreamContext* Stream(uint32_t id) {
  auto it = All().stream_roots.find(id);
  return it == All().stream_roots.end() ? nullptr : it->second->FindStream(id);
}

// The root that owns context `id` (itself if it is a root).
RootContext* OwningRoot(uint32_t id) {
  if (RootContext* root = Root(id)) return root;
  auto it = All().stream_roots.find(id);
  return it == All().stream_roots.end() ? nullptr : it->second;
}

void Log(LogLevel level, const std::string& message) { AbiHost::Get()->Log(level, message); }

}  // namespace
}  // namespace proxy_wasm

using namespace proxy_wasm;  // NOLINT: the exports are C symbols

PROXY_WASM_EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1() {}

PROXY_WASM_EXPORT(proxy_on_memory_allocate) void* proxy_on_memory_allocate(size_t size) {
  return ::malloc(size);
}

PROXY_WASM_EXPORT(proxy_on_context_create)
void proxy_on_context_create(uint32_t context_id, uint32_t parent_context_id) {
  if (parent_context_id == 0) {
    std::string root_id;
    AbiHost::Get()->GetProperty("plugin_root_id", &root_id);
    RootFactory factory = FindRootFactory(root_id);
    if (factory == nullptr) {
      Log(LogLevel::kCritical, "no filter for root_id '" + root_id + "' in this module");
      return;
    }
    All().roots[context_id] = factory(context_id, root_id, AbiHost::Get());
    return;
  }
  RootContext* root = Root(parent_context_id);
  if (root == nullptr) return;
  root->AddStream(root->NewStream(context_id));
  All().stream_roots[context_id] = root;
}

PROXY_WASM_EXPORT(proxy_on_vm_start)
uint32_t proxy_on_vm_start(uint32_t root_id, uint32_t configuration_size) {
  RootContext* root = Root(root_id);
  return root != nullptr && root->OnVmStart(configuration_size) ? 1 : 0;
}

PROXY_WASM_EXPORT(proxy_on_configure)
uint32_t proxy_on_configure(uint32_t root_id, uint32_t configuration_size) {
  RootContext* root = Root(root_id);
  return root != nullptr && root->OnConfigure(configuration_size) ? 1 : 0;
}

PROXY_WASM_EXPORT(proxy_on_tick) void proxy_on_tick(uint32_t root_id) {
  if (RootContext* root = Root(root_id)) root->OnTick();
}

PROXY_WASM_EXPORT(proxy_on_request_headers)
uint32_t proxy_on_request_headers(uint32_t id, uint32_t headers, uint32_t end_of_stream) {
  StreamContext* stream = Stream(id);
  if (stream == nullptr) return static_cast<uint32_t>(FilterHeadersStatus::kContinue);
  return static_cast<uint32_t>(stream->OnRequestHeaders(headers, end_of_stream != 0));
}

PROXY_WASM_EXPORT(proxy_on_request_body)
uint32_t proxy_on_request_body(uint32_t id, uint32_t body_size, uint32_t end_of_stream) {
  StreamContext* stream = Stream(id);
  if (stream == nullptr) return static_cast<uint32_t>(FilterDataStatus::kContinue);
  return static_cast<uint32_t>(stream->OnRequestBody(body_size, end_of_stream != 0));
}

PROXY_WASM_EXPORT(proxy_on_response_headers)
uint32_t proxy_on_response_headers(uint32_t id, uint32_t headers, uint32_t end_of_stream) {
  StreamContext* stream = Stream(id);
  if (stream == nullptr) return static_cast<uint32_t>(FilterHeadersStatus::kContinue);
  return static_cast<uint32_t>(stream->OnResponseHeaders(headers, end_of_stream != 0));
}

PROXY_WASM_EXPORT(proxy_on_response_body)
uint32_t proxy_on_response_body(uint32_t id, uint32_t body_size, uint32_t end_of_stream) {
  StreamContext* stream = Stream(id);
  if (stream == nullptr) return static_cast<uint32_t>(FilterDataStatus::kContinue);
  return static_cast<uint32_t>(stream->OnResponseBody(body_size, end_of_stream != 0));
}

PROXY_WASM_EXPORT(proxy_on_new_connection) uint32_t proxy_on_new_connection(uint32_t id) {
  StreamContext* stream = Stream(id);
  if (stream == nullptr) return static_cast<uint32_t>(FilterStatus::kContinue);
  return static_cast<uint32_t>(stream->OnNewConnection());
}

PROXY_WASM_EXPORT(proxy_on_downstream_data)
uint32_t proxy_on_downstream_data(uint32_t id, uint32_t data_size, uint32_t end_of_stream) {
  StreamContext* stream = Stream(id);
  if (stream == nullptr) return static_cast<uint32_t>(FilterStatus::kContinue);
  return static_cast<uint32_t>(stream->OnDownstreamData(data_size, end_of_stream != 0));
}

PROXY_WASM_EXPORT(proxy_on_upstream_data)
uint32_t proxy_on_upstream_data(uint32_t id, uint32_t data_size, uint32_t end_of_stream) {
  StreamContext* stream = Stream(id);
  if (stream == nullptr) return static_cast<uint32_t>(FilterStatus::kContinue);
  return static_cast<uint32_t>(stream->OnUpstreamData(data_size, end_of_stream != 0));
}

PROXY_WASM_EXPORT(proxy_on_downstream_connection_close)
void proxy_on_downstream_connection_close(uint32_t id, uint32_t peer) {
  if (StreamContext* stream = Stream(id)) {
    stream->OnDownstreamConnectionClose(static_cast<PeerType>(peer));
  }
}

PROXY_WASM_EXPORT(proxy_on_upstream_connection_close)
void proxy_on_upstream_connection_close(uint32_t id, uint32_t peer) {
  if (StreamContext* stream = Stream(id)) {
    stream->OnUpstreamConnectionClose(static_cast<PeerType>(peer));
  }
}

PROXY_WASM_EXPORT(proxy_on_log) void proxy_on_log(uint32_t id) {
  if (StreamContext* stream = Stream(id)) stream->OnLog();
}

PROXY_WASM_EXPORT(proxy_on_done) uint32_t proxy_on_done(uint32_t id) {
  if (StreamContext* stream = Stream(id)) {
    stream->OnDone();
    return 1;
  }
  RootContext* root = Root(id);
  return root == nullptr || root->OnDone() ? 1 : 0;
}

PROXY_WASM_EXPORT(proxy_on_delete) void proxy_on_delete(uint32_t id) {
  auto it = All().stream_roots.find(id);
  if (it != All().stream_roots.end()) {
    it->second->RemoveStream(id);
    All().stream_roots.erase(it);
    return;
  }
  All().roots.erase(id);
}

// gRPC answers come to the context that made the call; the transports live in the roots.
PROXY_WASM_EXPORT(proxy_on_grpc_receive_initial_metadata)
void proxy_on_grpc_receive_initial_metadata(uint32_t, uint32_t, uint32_t) {}

PROXY_WASM_EXPORT(proxy_on_grpc_receive_trailing_metadata)
void proxy_on_grpc_receive_trailing_metadata(uint32_t, uint32_t, uint32_t) {}

PROXY_WASM_EXPORT(proxy_on_grpc_receive)
void proxy_on_grpc_receive(uint32_t id, uint32_t token, uint32_t message_size) {
  if (RootContext* root = OwningRoot(id)) root->OnGrpcReceive(token, message_size);
}

PROXY_WASM_EXPORT(proxy_on_grpc_close)
void proxy_on_grpc_close(uint32_t id, uint32_t token, uint32_t status_code) {
  if (RootContext* root = OwningRoot(id)) root->OnGrpcClose(token, status_code);
}
