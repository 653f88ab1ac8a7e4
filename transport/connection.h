// The contract between a transport and the protocol layer above it.
//
// A transport moves whole messages: one JSON-RPC text per message, never
// containing a raw '\n' (stdio frames messages by newline; MCP-NOTES §4).
//
// Outbound, the protocol layer holds a MessageSink per connection. Inbound, the
// transport hands each received message to the protocol layer as a
// std::string_view that is valid only for the duration of the call.
#pragma once

#include <functional>
#include <string_view>

namespace orch::transport {

// Delivers one complete outgoing message to the peer.
//
// Thread-safe: any thread may call it at any time, and messages from
// concurrent callers are never interleaved. It may block while the peer is
// slow to read (that is the back-pressure), but never on other work.
// Returns false when the message was not delivered: the peer has gone, the
// stream broke earlier, or the message was refused (it contains '\n'). The
// caller drops the message; a transport never retries on its own.
using MessageSink = std::function<bool(std::string_view message)>;

// Receives one incoming message, in arrival order. The view is valid only
// during the call.
using MessageHandler = std::function<void(std::string_view message)>;

}  // namespace orch::transport
