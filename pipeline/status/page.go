package status

import (
	"html/template"
	"net/http"
	"time"
)

// Source builds a report for the page; it may query NATS and must return
// within ctx.
type Source func(r *http.Request) (*Report, error)

var page = template.Must(template.New("status").Funcs(template.FuncMap{
	"ms":   func(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05Z") },
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"secs": func(d time.Duration) string { return d.Round(time.Second).String() },
	"class": func(s string) string {
		switch s {
		case "PUBLISHING":
			return "ok"
		case "PENDING_VERIFICATION":
			return "pending"
		}
		return "bad"
	},
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="10">
<title>gdexport — {{if .Healthy}}all destinations publishing{{else}}export needs attention{{end}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#16191f;background:#fafafa}
h1{font-size:1.4rem;margin:0 0 .2rem}
.sub{color:#5f6b7a;margin:0 0 1.5rem}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px rgba(0,0,0,.15)}
th,td{text-align:left;padding:.55rem .7rem;border-bottom:1px solid #e9ebed;font-size:.9rem;vertical-align:top}
td{overflow-wrap:anywhere}.nowrap{white-space:nowrap}
th{background:#f2f3f3;font-weight:600}
.status{font-weight:600;font-size:.8rem}
.ok .status{color:#037f0c}.pending .status{color:#8d6605}.bad .status{color:#d91515}
.bad{background:#fff7f7}
.alert{border-left:4px solid #d91515;background:#fff;padding:.8rem 1rem;margin:0 0 1.2rem;box-shadow:0 1px 2px rgba(0,0,0,.15)}
.alert b{color:#d91515}
.err{font-family:ui-monospace,monospace;font-size:.8rem;color:#5f1616;margin-top:.3rem;white-space:pre-wrap}
code{font-size:.85rem}
footer{color:#5f6b7a;font-size:.85rem;margin-top:1.2rem}
</style>
</head>
<body>
<h1>gdexport export status</h1>
<p class="sub">{{len .Destinations}} destination(s) · generated {{when .Generated}} · refreshes every 10 s</p>
{{range .Destinations}}{{if eq (class .Status) "bad"}}<div class="alert" id="alert-{{.ID}}"><b>Export access error</b> — destination <code>{{.ID}}</code> of account {{.Account}} in {{.Region}} ({{.Target}}) is <b>{{.Status}}</b>{{if .PublishingFailureStartTimestamp}} since {{ms .PublishingFailureStartTimestamp}}{{end}}. Findings are kept and exported once it is fixed.{{if .LastError}}<div class="err">{{.LastError}}</div>{{end}}</div>
{{end}}{{end}}
<table>
<thead><tr><th>Account</th><th>Region</th><th>Destination</th><th>Status</th><th>Failing since</th><th>Frequency</th><th>Last export</th><th>Backlog</th><th>Next flush</th></tr></thead>
<tbody>
{{range .Destinations}}<tr class="{{class .Status}}" id="dest-{{.ID}}">
<td class="nowrap">{{.Account}}</td><td class="nowrap">{{.Region}}</td>
<td><code>{{.ID}}</code>{{if .Default}} (default){{end}}<br>{{.Type}} {{.Target}}</td>
<td class="status">{{.Status}}</td>
<td>{{if .PublishingFailureStartTimestamp}}{{ms .PublishingFailureStartTimestamp}}{{else}}—{{end}}</td>
<td>{{.Frequency}}</td>
<td>{{if .LastExport.IsZero}}never{{else}}{{when .LastExport}}{{end}}</td>
<td>{{.BacklogBatches}} batch(es){{if .BacklogBatches}}, oldest {{secs .OldestPending}}{{end}}</td>
<td>{{if .NextFlush.IsZero}}—{{else}}{{when .NextFlush}} ({{.PendingWindows}} window(s)){{end}}</td>
</tr>
{{else}}<tr><td colspan="9">No destinations yet.</td></tr>
{{end}}</tbody>
</table>
<footer>{{range .Consumers}}<code>{{.Name}}</code>: {{.Pending}} pending, {{.AckPending}} unacknowledged{{if .OldestPending}}, oldest {{secs .OldestPending}}{{end}} · {{end}}updates waiting in windows: {{.PendingUpdates}} · dead letters: {{.DeadLetters}} · <a href="/metrics">metrics</a></footer>
</body>
</html>
`))

// Handler serves the status page built from src.
func Handler(src Source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep, err := src(r)
		if err != nil {
			http.Error(w, "status unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		rep.Sort()
		if r.URL.Query().Get("format") == "json" {
			w.Header().Set("Content-Type", "application/json")
			_ = rep.WriteJSON(w)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = page.Execute(w, rep)
	})
}
