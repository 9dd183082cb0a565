#pragma once
// Browser files the html format embeds, compiled in from web/admin/ at build
// time (cmake/embed_text.cmake), so `sigstream history --format html` writes
// one self-contained page with the same timeline the admin page draws.
namespace sig::history::assets {

extern char const report_html[];   // web/admin/report.html: the page, with placeholders
extern char const timeline_js[];   // web/admin/timeline.js
extern char const timeline_css[];  // web/admin/timeline.css

}  // namespace sig::history::assets
