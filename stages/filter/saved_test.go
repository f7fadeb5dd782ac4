package filter

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/gdexport/gdexport/pipeline"
)

func TestParseFilterShapes(t *testing.T) {
	criteria := `{"Criterion":{"type":{"Eq":["Recon:EC2/Portscan"]}}}`
	tests := []struct {
		name string
		doc  string
		want Filter // Criteria is not compared
	}{
		// The AWS CLI's CreateFilter example, as in ../shared/samples.
		{"CreateFilter CLI body", readTestdata(t, "filter_createfilter_awscli_example_archive_portscan.json"),
			Filter{Name: "myFilterSecondExample", Action: ActionArchive}},
		// What `aws guardduty get-filter` prints.
		{"get-filter output", `{"Name":"suppress-scans","Description":"scanner","Action":"ARCHIVE","Rank":2,"FindingCriteria":` + criteria + `,"Tags":{"team":"sec"}}`,
			Filter{Name: "suppress-scans", Description: "scanner", Action: ActionArchive, Rank: 2, Tags: map[string]string{"team": "sec"}}},
		// The REST API's camelCase request body.
		{"REST camelCase body", `{"detectorId":"d1","name":"my.filter_1","action":"NOOP","rank":100,"clientToken":"x","findingCriteria":{"criterion":{"severity":{"gte":7}}}}`,
			Filter{Name: "my.filter_1", Action: ActionNoop, Rank: 100}},
		// Action defaults to NOOP, as in GuardDuty.
		{"action defaults to NOOP", `{"Name":"abc","FindingCriteria":` + criteria + `}`,
			Filter{Name: "abc", Action: ActionNoop}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFilter([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if f.Name != tt.want.Name || f.Description != tt.want.Description || f.Action != tt.want.Action || f.Rank != tt.want.Rank || len(f.Tags) != len(tt.want.Tags) {
				t.Errorf("got %+v, want %+v", *f, tt.want)
			}
			// The wire form reads back the same.
			b, err := json.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			g, err := ParseFilter(b)
			if err != nil {
				t.Fatalf("wire form %s refused: %v", b, err)
			}
			b2, _ := json.Marshal(g)
			if string(b) != string(b2) {
				t.Errorf("wire round trip changed:\n%s\n%s", b, b2)
			}
			// So does the get-filter (PascalCase) form.
			p, _ := json.Marshal(f.Document(true))
			if _, err := ParseFilter(p); err != nil {
				t.Errorf("get-filter form %s refused: %v", p, err)
			}
		})
	}
}

func TestParseFilterRefuses(t *testing.T) {
	criteria := `{"Criterion":{"type":{"Eq":["x"]}}}`
	tests := []struct {
		name string
		doc  string
		want string
	}{
		// Names are 3 to 64 characters.
		{"short name", `{"Name":"ab","FindingCriteria":` + criteria + `}`, `name: "ab" is not a filter name`},
		// Only letters, digits, '.', '_' and '-'.
		{"bad character", `{"Name":"a b c","FindingCriteria":` + criteria + `}`, `name: "a b c" is not a filter name`},
		// 65 characters.
		{"long name", `{"Name":"` + strings.Repeat("a", 65) + `","FindingCriteria":` + criteria + `}`, "is not a filter name"},
		// A name is required.
		{"no name", `{"FindingCriteria":` + criteria + `}`, "name: missing"},
		// Actions are NOOP and ARCHIVE.
		{"bad action", `{"Name":"abc","Action":"DELETE","FindingCriteria":` + criteria + `}`, `action: "DELETE": expected NOOP or ARCHIVE`},
		// Ranks are 1 to 100.
		{"rank 101", `{"Name":"abc","Rank":101,"FindingCriteria":` + criteria + `}`, "rank: 101 is out of range"},
		// A rank is a whole number.
		{"fractional rank", `{"Name":"abc","Rank":1.5,"FindingCriteria":` + criteria + `}`, "Rank: 1.5 is not a whole number"},
		// Criteria problems carry the path from the filter.
		{"criteria path", `{"Name":"abc","FindingCriteria":{"Criterion":{"foo":{"Eq":["x"]}}}}`, `findingCriteria.Criterion.foo: unknown attribute "foo"`},
		// Criteria are required.
		{"no criteria", `{"Name":"abc"}`, "findingCriteria: missing"},
		// Unknown members are named.
		{"unknown member", `{"Name":"abc","Filter":{},"FindingCriteria":` + criteria + `}`, `unknown member "Filter"`},
		// A description is at most 512 characters.
		{"long description", `{"Name":"abc","Description":"` + strings.Repeat("d", 513) + `","FindingCriteria":` + criteria + `}`, "description: 513 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFilter([]byte(tt.doc))
			if err == nil {
				t.Fatal("accepted; want refusal")
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q and wrap ErrInvalid", err, tt.want)
			}
		})
	}
}

func mustFilter(t testing.TB, name string, action Action, rank int, criteria string) *Filter {
	t.Helper()
	f, err := NewFilter(Spec{Name: name, Action: string(action), Rank: rank, FindingCriteria: mustDecode(t, criteria)})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSetOrder(t *testing.T) {
	v := fastjson.MustParse(base)
	all := `{"Criterion":{}}`
	none := `{"Criterion":{"type":{"Eq":["nothing"]}}}`
	tests := []struct {
		name        string
		filters     []*Filter
		wantArchive string
		wantFirst   string
	}{
		// The lowest rank applies first.
		{"rank order", []*Filter{mustFilter(t, "second", ActionArchive, 2, all), mustFilter(t, "first", ActionArchive, 1, all)}, "first", "first"},
		// Equal ranks apply in name order, so every worker agrees.
		{"ties by name", []*Filter{mustFilter(t, "bbb", ActionArchive, 1, all), mustFilter(t, "aaa", ActionArchive, 1, all)}, "aaa", "aaa"},
		// A NOOP filter never archives, even when it matches first.
		{"NOOP does not archive", []*Filter{mustFilter(t, "view", ActionNoop, 1, all), mustFilter(t, "rule", ActionArchive, 5, all)}, "rule", "view"},
		// Filters that do not match are passed over.
		{"no match", []*Filter{mustFilter(t, "rule", ActionArchive, 1, none)}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSet(tt.filters)
			name := func(f *Filter) string {
				if f == nil {
					return ""
				}
				return f.Name
			}
			if got := name(s.Archive(v)); got != tt.wantArchive {
				t.Errorf("Archive = %q, want %q", got, tt.wantArchive)
			}
			a, first := s.Judge(v)
			if name(a) != tt.wantArchive || name(first) != tt.wantFirst {
				t.Errorf("Judge = %q, %q; want %q, %q", name(a), name(first), tt.wantArchive, tt.wantFirst)
			}
		})
	}
	// Concat keeps each set's own order: the administrator's, then the member's.
	admin := NewSet([]*Filter{mustFilter(t, "admin-rule", ActionArchive, 50, all)})
	own := NewSet([]*Filter{mustFilter(t, "own-rule", ActionArchive, 1, all)})
	if got := Concat(admin, own).Archive(v); got == nil || got.Name != "admin-rule" {
		t.Errorf("Concat(admin, own).Archive = %v, want admin-rule", got)
	}
	if Concat(nil, nil) != nil || (*Set)(nil).Archives() {
		t.Error("empty sets must be nil and archive nothing")
	}
}

type rulesFunc func(account, region string) *Set

func (f rulesFunc) Filters(account, region string) *Set { return f(account, region) }

func TestStage(t *testing.T) {
	portscan := NewSet([]*Filter{
		mustFilter(t, "suppress-portscan", ActionArchive, 1, `{"Criterion":{"type":{"Eq":["Recon:EC2/Portscan"]}}}`),
	})
	rules := rulesFunc(func(account, region string) *Set {
		if account == "111122223333" && region == "us-east-1" {
			return portscan
		}
		return nil
	})
	finding := func(account string, archived bool) *pipeline.Finding {
		return &pipeline.Finding{Raw: []byte(base), ID: "f1", Type: "Recon:EC2/Portscan", AccountID: account, Region: "us-east-1", Archived: archived}
	}
	tests := []struct {
		name       string
		stage      *Stage
		finding    *pipeline.Finding
		parsed     bool
		wantDrop   string
		wantDetail string
	}{
		// B1: an archived finding is dropped before any rule runs.
		{"archived", &Stage{Rules: rules}, finding("111122223333", true), true, pipeline.DropArchived, "service.archived is true"},
		// B2: an ARCHIVE filter of the finding's account suppresses it, named.
		{"suppressed with parsed form", &Stage{Rules: rules}, finding("111122223333", false), true, pipeline.DropSuppressed, "suppress-portscan"},
		// Without decode's parsed form the stage parses Raw itself.
		{"suppressed without parsed form", &Stage{Rules: rules}, finding("111122223333", false), false, pipeline.DropSuppressed, "suppress-portscan"},
		// Another account's rules do not apply.
		{"other account", &Stage{Rules: rules}, finding("444455556666", false), true, "", ""},
		// No rules: only archived findings drop.
		{"no rules", &Stage{}, finding("111122223333", false), true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &pipeline.Envelope{Finding: tt.finding}
			released := false
			if tt.parsed {
				var p fastjson.Parser
				v, _ := p.Parse(base)
				e.SetParsed(v, func() { released = true })
			}
			if err := tt.stage.Process(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			if e.Drop != tt.wantDrop || e.DropDetail != tt.wantDetail {
				t.Errorf("drop = %q %q, want %q %q", e.Drop, e.DropDetail, tt.wantDrop, tt.wantDetail)
			}
			e.Release()
			if tt.parsed && !released {
				t.Error("Release did not release the parsed form")
			}
		})
	}
}
