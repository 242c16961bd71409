#pragma once

// Process-wide libllama setup. Thread: call from the main thread before any other engine call.

namespace kvs {

enum class LibraryLogLevel { kQuiet, kWarnings, kVerbose };

// Initializes the backend once (later calls only change the log level). libllama's log callback
// is global: kQuiet drops everything but errors, kWarnings keeps warnings and errors.
void InitBackend(LibraryLogLevel level = LibraryLogLevel::kWarnings);

}  // namespace kvs
