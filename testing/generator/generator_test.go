package generator

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/stages/decode"
)

// collect generates cfg and decodes every finding; any finding decode
// refuses fails the test.
func collect(t *testing.T, cfg Config) []*pipeline.Finding {
	t.Helper()
	var out []*pipeline.Finding
	err := Generate(cfg, func(b []byte) error {
		f, err := decode.Decode(b)
		if err != nil {
			t.Fatalf("decode refused generated finding (%v): %s", err, b)
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func digest(t *testing.T, cfg Config) [32]byte {
	t.Helper()
	h := sha256.New()
	if err := Generate(cfg, func(b []byte) error { h.Write(b); h.Write([]byte{'\n'}); return nil }); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func TestDeterministic(t *testing.T) {
	tests := []struct {
		name string
		a, b Config
		same bool
	}{
		// The same Config yields the same bytes.
		{name: "same seed", a: Config{Seed: 7, Versions: 500}, b: Config{Seed: 7, Versions: 500}, same: true},
		{name: "same seed shuffled", a: Config{Seed: 7, Versions: 500, Shuffle: true}, b: Config{Seed: 7, Versions: 500, Shuffle: true}, same: true},
		// Defaults are fixed values, not the clock.
		{name: "zero config", a: Config{Versions: 200}, b: Config{Versions: 200, Start: DefaultStart, Spacing: DefaultSpacing}, same: true},
		// Another seed is another data set.
		{name: "other seed", a: Config{Seed: 7, Versions: 500}, b: Config{Seed: 8, Versions: 500}},
		// Shuffle changes the order.
		{name: "shuffle", a: Config{Seed: 7, Versions: 500}, b: Config{Seed: 7, Versions: 500, Shuffle: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if same := digest(t, tt.a) == digest(t, tt.b); same != tt.same {
				t.Errorf("outputs equal = %v, want %v", same, tt.same)
			}
		})
	}
}

func TestEveryFindingDecodes(t *testing.T) {
	// Every account, Region and partition shape passes decode; collect fails
	// on the first refusal.
	cfgs := []Config{
		{Seed: 1, Versions: 3000},
		{Seed: 2, Versions: 300, Regions: []string{"cn-north-1", "us-gov-west-1", "eusc-de-east-1", "il-central-1"}, Accounts: []string{"000000000001"}},
	}
	for _, cfg := range cfgs {
		fs := collect(t, cfg)
		if len(fs) != cfg.Versions {
			t.Errorf("%d findings, want %d", len(fs), cfg.Versions)
		}
	}
}

func TestShape(t *testing.T) {
	// The wire shape: top-level members in GuardDuty's order, and the
	// partition that goes with the Region.
	want := []string{"schemaVersion", "accountId", "region", "partition", "id", "arn", "type", "resource", "service", "severity", "createdAt", "updatedAt", "title", "description"}
	partitions := map[string]string{"us-east-1": "aws", "cn-north-1": "aws-cn", "us-gov-west-1": "aws-us-gov"}
	var p fastjson.Parser
	err := Generate(Config{Seed: 3, Versions: 200, Regions: []string{"us-east-1", "cn-north-1", "us-gov-west-1"}}, func(b []byte) error {
		v, err := p.ParseBytes(b)
		if err != nil {
			return err
		}
		var keys []string
		v.GetObject().Visit(func(k []byte, _ *fastjson.Value) { keys = append(keys, string(k)) })
		if !slices.Equal(keys, want) {
			t.Fatalf("members %q, want %q", keys, want)
		}
		region := string(v.GetStringBytes("region"))
		if got := string(v.GetStringBytes("partition")); got != partitions[region] {
			t.Errorf("partition %q in %s", got, region)
		}
		id := string(v.GetStringBytes("id"))
		if len(id) != 32 || !bytes.HasSuffix(v.GetStringBytes("arn"), []byte("/finding/"+id)) {
			t.Errorf("id %q, arn %s", id, v.GetStringBytes("arn"))
		}
		for _, k := range []string{"serviceName", "detectorId", "archived", "count", "eventFirstSeen", "eventLastSeen", "resourceRole", "additionalInfo"} {
			if !v.Exists("service", k) {
				t.Errorf("service.%s missing in %s", k, v.GetStringBytes("type"))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSizes(t *testing.T) {
	// 1–10 KB, and spread out rather than one size.
	lo, hi := 1<<30, 0
	err := Generate(Config{Seed: 4, Versions: 5000}, func(b []byte) error {
		lo, hi = min(lo, len(b)), max(hi, len(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if lo < 1024 || hi > 10240 {
		t.Errorf("sizes %d–%d bytes, want within 1–10 KB", lo, hi)
	}
	if hi-lo < 4096 {
		t.Errorf("sizes %d–%d bytes: too little variety", lo, hi)
	}
}

func TestCompressionIsHonest(t *testing.T) {
	// Random values keep gzip from collapsing repeated blobs: real exports
	// compress several times, not a hundred times.
	var raw bytes.Buffer
	if err := Generate(Config{Seed: 5, Versions: 2000}, func(b []byte) error { raw.Write(b); raw.WriteByte('\n'); return nil }); err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(raw.Bytes())
	zw.Close()
	if ratio := float64(raw.Len()) / float64(z.Len()); ratio < 3 || ratio > 12 {
		t.Errorf("gzip ratio %.1f, want 3–12", ratio)
	}
}

func TestVersions(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		// Defaults: up to 5 versions per id.
		{name: "default", cfg: Config{Seed: 6, Versions: 4000}},
		// One version per id.
		{name: "single versions", cfg: Config{Seed: 6, Versions: 500, MaxVersionsPerID: 1}},
		// Many versions per id.
		{name: "long histories", cfg: Config{Seed: 6, Versions: 2000, MaxVersionsPerID: 12, Spacing: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := collect(t, tt.cfg)
			max := tt.cfg.MaxVersionsPerID
			if max == 0 {
				max = DefaultMaxVersionsPerID
			}
			type history struct{ created, updated, count int64 }
			seen := map[string]*history{}
			perID := map[string]int{}
			var lastUpdated int64
			for i, f := range fs {
				// updatedAt rises strictly along the emission order.
				if f.UpdatedAt <= lastUpdated {
					t.Fatalf("finding %d: updatedAt %s not after %s", i, f.UpdatedAtText(), pipeline.FormatMillis(lastUpdated))
				}
				lastUpdated = f.UpdatedAt
				perID[f.ID]++
				h, ok := seen[f.ID]
				if !ok {
					// The first version is created when it is updated.
					if f.CreatedAt != f.UpdatedAt {
						t.Errorf("%s: first version createdAt %d != updatedAt %d", f.ID, f.CreatedAt, f.UpdatedAt)
					}
					seen[f.ID] = &history{f.CreatedAt, f.UpdatedAt, f.Count}
					continue
				}
				if f.CreatedAt != h.created || f.UpdatedAt <= h.updated || f.Count <= h.count {
					t.Errorf("%s: version (created %d, updated %d, count %d) after (%d, %d, %d)", f.ID, f.CreatedAt, f.UpdatedAt, f.Count, h.created, h.updated, h.count)
				}
				h.updated, h.count = f.UpdatedAt, f.Count
			}
			multi := 0
			for id, n := range perID {
				if n > max {
					t.Errorf("%s has %d versions, more than %d", id, n, max)
				}
				if n > 1 {
					multi++
				}
			}
			if max > 1 && multi == 0 {
				t.Error("no id has more than one version")
			}
			// Ids interleave: some id's versions are not consecutive.
			if max > 1 && !interleaved(fs) {
				t.Error("versions of each id are emitted together")
			}
		})
	}
}

func interleaved(fs []*pipeline.Finding) bool {
	last := map[string]int{}
	for i, f := range fs {
		if j, ok := last[f.ID]; ok && j != i-1 {
			return true
		}
		last[f.ID] = i
	}
	return false
}

func TestShuffle(t *testing.T) {
	// Shuffle emits the same versions in another order, some of them older
	// than a version of the same id already emitted (stale versions, B6).
	ordered := collect(t, Config{Seed: 9, Versions: 2000})
	shuffled := collect(t, Config{Seed: 9, Versions: 2000, Shuffle: true})
	key := func(fs []*pipeline.Finding) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.VersionKey()+" "+string(f.Raw))
		}
		return out
	}
	a, b := key(ordered), key(shuffled)
	if slices.Equal(a, b) {
		t.Fatal("shuffled output is in order")
	}
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) {
		t.Error("shuffled output holds other findings")
	}
	latest := map[string]int64{}
	stale := 0
	for _, f := range shuffled {
		if u, ok := latest[f.ID]; ok && f.UpdatedAt < u {
			stale++
		}
		latest[f.ID] = max(latest[f.ID], f.UpdatedAt)
	}
	if stale == 0 {
		t.Error("no version comes after a newer one")
	}
}

func TestArchived(t *testing.T) {
	tests := []struct {
		name   string
		share  float64
		lo, hi float64
	}{
		// The default 5 %.
		{name: "default", share: 0, lo: 0.035, hi: 0.065},
		// A negative share means none.
		{name: "none", share: -1, lo: 0, hi: 0},
		// A large share.
		{name: "half", share: 0.5, lo: 0.4, hi: 0.6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := collect(t, Config{Seed: 10, Versions: 20000, ArchivedShare: tt.share})
			archived := 0
			byID := map[string][]bool{}
			for _, f := range fs {
				if f.Archived {
					archived++
				}
				byID[f.ID] = append(byID[f.ID], f.Archived)
			}
			if got := float64(archived) / float64(len(fs)); got < tt.lo || got > tt.hi {
				t.Errorf("archived share %.3f, want %.3f–%.3f", got, tt.lo, tt.hi)
			}
			if tt.hi == 0 {
				return
			}
			// B1's cases: archived then unarchived, and active then archived.
			var unarchived, archivedLater bool
			for _, h := range byID {
				for i := 1; i < len(h); i++ {
					unarchived = unarchived || (h[i-1] && !h[i])
					archivedLater = archivedLater || (!h[i-1] && h[i])
				}
			}
			if !unarchived || !archivedLater {
				t.Errorf("unarchived ids: %v, ids archived after an active version: %v; want both", unarchived, archivedLater)
			}
		})
	}
}

func TestVariety(t *testing.T) {
	fs := collect(t, Config{Seed: 11, Versions: 3000})
	types := map[string]bool{}
	accounts := map[string]bool{}
	regions := map[string]bool{}
	resources := map[string]bool{}
	var p fastjson.Parser
	for _, f := range fs {
		types[f.Type] = true
		accounts[f.AccountID] = true
		regions[f.Region] = true
		v, err := p.ParseBytes(f.Raw)
		if err != nil {
			t.Fatal(err)
		}
		resources[string(v.GetStringBytes("resource", "resourceType"))] = true
	}
	if len(types) < 20 {
		t.Errorf("%d distinct types, want at least 20", len(types))
	}
	if len(types) != len(catalog) {
		t.Errorf("%d of the %d catalogued types appear", len(types), len(catalog))
	}
	if len(resources) < 7 {
		t.Errorf("resource types %v, want at least 7", resources)
	}
	if len(accounts) != len(DefaultAccounts()) || len(regions) != len(DefaultRegions) {
		t.Errorf("%d accounts and %d Regions, want every default", len(accounts), len(regions))
	}
	for _, a := range DefaultAdministrators {
		if !accounts[a] {
			t.Errorf("administrator %s has no findings", a)
		}
	}
}

func TestNestedTimestampForms(t *testing.T) {
	// Like real findings, nested timestamps come as ISO-8601 strings, epoch
	// milliseconds and epoch seconds with a fraction; all parse.
	var p fastjson.Parser
	forms := map[string]bool{}
	err := Generate(Config{Seed: 12, Versions: 2000}, func(b []byte) error {
		v, err := p.ParseBytes(b)
		if err != nil {
			return err
		}
		for _, path := range [][]string{
			{"resource", "instanceDetails", "launchTime"},
			{"resource", "s3BucketDetails", "0", "createdAt"},
			{"resource", "eksClusterDetails", "createdAt"},
			{"service", "ebsVolumeScanDetails", "scanStartedAt"},
			{"service", "eventFirstSeen"},
		} {
			ts := v.Get(path...)
			if ts == nil {
				continue
			}
			if _, ok := decode.ParseTimestamp(ts); !ok {
				t.Errorf("%v = %s does not parse", path, ts)
			}
			switch {
			case ts.Type() == fastjson.TypeString:
				forms["iso"] = true
			case bytes.ContainsRune(ts.MarshalTo(nil), '.'):
				forms["seconds"] = true
			default:
				forms["millis"] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(forms) != 3 {
		t.Errorf("timestamp forms %v, want iso, seconds and millis", forms)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		// The zero value takes every default.
		{name: "zero", cfg: Config{}},
		{name: "negative versions", cfg: Config{Versions: -1}, wantErr: true},
		{name: "negative max versions", cfg: Config{MaxVersionsPerID: -1}, wantErr: true},
		{name: "share above one", cfg: Config{ArchivedShare: 1.5}, wantErr: true},
		{name: "negative spacing", cfg: Config{Spacing: -time.Second}, wantErr: true},
		{name: "short account", cfg: Config{Accounts: []string{"12345"}}, wantErr: true},
		{name: "bad region", cfg: Config{Regions: []string{"Moon"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrConfig) {
					t.Errorf("%v does not wrap ErrConfig", err)
				}
				if gerr := Generate(tt.cfg, func([]byte) error { t.Fatal("emitted with a bad config"); return nil }); !errors.Is(gerr, ErrConfig) {
					t.Errorf("Generate = %v", gerr)
				}
			}
		})
	}
}

func TestConfigRespected(t *testing.T) {
	cfg := Config{Seed: 13, Versions: 300, Accounts: []string{"123456789012"}, Regions: []string{"ap-southeast-5"},
		Start: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), Spacing: time.Minute}
	fs := collect(t, cfg)
	first, last := fs[0].UpdatedAt, fs[len(fs)-1].UpdatedAt
	for _, f := range fs {
		if f.AccountID != "123456789012" || f.Region != "ap-southeast-5" {
			t.Fatalf("finding in %s/%s", f.AccountID, f.Region)
		}
	}
	if first < cfg.Start.UnixMilli() || first > cfg.Start.Add(time.Hour).UnixMilli() {
		t.Errorf("first updatedAt %s, want just after %s", pipeline.FormatMillis(first), cfg.Start)
	}
	// 300 gaps of a minute on average.
	if span := time.Duration(last-first) * time.Millisecond; span < 3*time.Hour || span > 8*time.Hour {
		t.Errorf("span %s, want about 5h", span)
	}
}

func TestCallbackError(t *testing.T) {
	stop := errors.New("stop")
	for _, shuffle := range []bool{false, true} {
		n := 0
		err := Generate(Config{Versions: 100, Shuffle: shuffle}, func([]byte) error {
			n++
			if n == 10 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != 10 {
			t.Errorf("shuffle %v: Generate = %v after %d calls", shuffle, err, n)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	var bytesOut int64
	b.ReportAllocs()
	for b.Loop() {
		bytesOut = 0
		if err := Generate(Config{Seed: 1, Versions: 1000}, func(f []byte) error { bytesOut += int64(len(f)); return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(bytesOut)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/finding")
}

func TestPlaceholdersFilled(t *testing.T) {
	// Every title and description placeholder names a value that the
	// finding's resource and action set.
	err := Generate(Config{Seed: 14, Versions: 3000}, func(b []byte) error {
		if bytes.Contains(b, []byte(`{instance}`)) || bytes.Contains(b, []byte(`{ip}`)) || bytes.Contains(b, []byte(`{`+`api}`)) {
			t.Fatalf("placeholder left: %s", b)
		}
		var p fastjson.Parser
		v, _ := p.ParseBytes(b)
		for _, k := range []string{"title", "description"} {
			text := string(v.GetStringBytes(k))
			if bytes.Contains([]byte(text), []byte("{")) || bytes.Contains([]byte(text), []byte("  ")) || bytes.Contains([]byte(text), []byte(" .")) {
				t.Fatalf("%s %q of %s has an empty or unfilled placeholder", k, text, v.GetStringBytes("type"))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
