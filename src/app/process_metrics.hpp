#pragma once
// The standard process_* series every Prometheus client library exports
// (CPU seconds, resident and virtual memory, open and maximum file
// descriptors, start time), read from /proc at scrape time.
#include <string>

namespace sig::app {

// Appends them to `out`; on a system without /proc, appends nothing.
void append_process_metrics(std::string& out);

}  // namespace sig::app
