#pragma once
// How an operation that finishes later (once its journal record is durable) hands over its
// result: a callback called exactly once, from whichever thread finished it, with the error
// first as Asio's completion handlers take it: an exception (what the blocking form would have
// thrown) or nullptr and the JSON result. The domain's asynchronous operations take one, and
// the HTTP router's deferred handlers (http::Reply) are answered through the same type.
#include <nlohmann/json.hpp>

#include <exception>
#include <functional>

namespace kohaku {

using JsonCompletion = std::function<void(std::exception_ptr error, nlohmann::json result)>;

// The blocking form: calls start(done) and waits until done was called; returns its result or
// throws its error. What start throws before that propagates as is.
nlohmann::json wait_for(const std::function<void(JsonCompletion done)>& start);

}  // namespace kohaku
