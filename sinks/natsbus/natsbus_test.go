package natsbus

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/gdexport/gdexport/pipeline"
)

var uuidShape = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestEventID(t *testing.T) {
	f := &pipeline.Finding{ID: "abc", UpdatedAt: 1700000000000}
	later := &pipeline.Finding{ID: "abc", UpdatedAt: 1700000000001}
	a1, a2 := EventID("dest-a", f), EventID("dest-a", f)
	if a1 != a2 {
		t.Errorf("a retried event changed its id: %s then %s", a1, a2)
	}
	if !uuidShape.MatchString(a1) {
		t.Errorf("event id %q is not UUID-shaped", a1)
	}
	if EventID("dest-b", f) == a1 {
		t.Error("two destinations gave the same event id for one finding version")
	}
	if EventID("dest-a", later) == a1 {
		t.Error("two versions of a finding gave the same event id")
	}
}

// The envelope is GuardDuty's EventBridge shape with the finding as detail,
// byte for byte.
func TestAppendEnvelope(t *testing.T) {
	raw := `{"id":"abc","accountId":"444455556666","region":"eu-west-1","x":[1,{"y":null}]}`
	f := &pipeline.Finding{ID: "abc", UpdatedAt: 1700000000123, Raw: []byte(raw)}
	b := AppendEnvelope(nil, "id-1", "111122223333", "eu-west-1", f)
	var env struct {
		Version    string          `json:"version"`
		ID         string          `json:"id"`
		DetailType string          `json:"detail-type"`
		Source     string          `json:"source"`
		Account    string          `json:"account"`
		Time       string          `json:"time"`
		Region     string          `json:"region"`
		Resources  []string        `json:"resources"`
		Detail     json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("envelope is not JSON: %v\n%s", err, b)
	}
	want := []struct{ name, got, want string }{
		{"version", env.Version, "0"},
		{"id", env.ID, "id-1"},
		{"detail-type", env.DetailType, "GuardDuty Finding"},
		{"source", env.Source, "aws.guardduty"},
		{"account (administrator)", env.Account, "111122223333"},
		{"time (updatedAt)", env.Time, "2023-11-14T22:13:20Z"},
		{"region", env.Region, "eu-west-1"},
		{"detail", string(env.Detail), raw},
	}
	for _, w := range want {
		if w.got != w.want {
			t.Errorf("%s = %q, want %q", w.name, w.got, w.want)
		}
	}
	if env.Resources == nil || len(env.Resources) != 0 {
		t.Errorf("resources = %v, want []", env.Resources)
	}
}
