package generator

import (
	"math/rand/v2"
)

// poolSize is how many finding ids are "open" (have versions still to come)
// at once in ordered mode: versions of up to this many ids interleave.
const poolSize = 32

// archivedCorrection compensates for the active versions of archived ids
// (measured over 100,000 versions with the default MaxVersionsPerID).
const archivedCorrection = 1.19

// version is one planned finding version.
type version struct {
	updatedAt int64 // epoch ms
	count     int64
	archived  bool
}

// finding is one finding id and its planned versions. Its body is rendered
// from seed alone, so it is the same in every version and in either emission
// order.
type finding struct {
	seed      uint64
	account   string
	region    string
	kind      int // index in catalog
	createdAt int64
	versions  []version
	next      int // versions emitted (ordered mode) or planned
}

// Generate calls fn with Config.Versions compact camelCase GuardDuty findings,
// one finding version per call, and returns fn's first error or a Config
// error (wrapping ErrConfig). fn owns each slice it receives.
//
// Versions of an id come in updatedAt order, interleaved with other ids,
// unless Config.Shuffle is set. updatedAt rises strictly along the emission
// order (by Config.Spacing on average), service.count rises with each version
// of an id and createdAt stays that of its first version. Generate streams:
// without Shuffle it holds a few dozen open ids, never the output.
func Generate(cfg Config, fn func(f []byte) error) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	s := newScheduler(cfg)
	r := newRenderer()
	if !cfg.Shuffle {
		return s.run(func(f *finding, v int) error {
			return fn(r.render(f, v))
		})
	}
	type planned struct {
		f *finding
		v int
	}
	plan := make([]planned, 0, cfg.Versions)
	_ = s.run(func(f *finding, v int) error {
		plan = append(plan, planned{f, v})
		return nil
	})
	s.rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	for _, p := range plan {
		if err := fn(r.render(p.f, p.v)); err != nil {
			return err
		}
	}
	return nil
}

// scheduler decides which id emits next and plans ids' versions.
type scheduler struct {
	cfg       Config
	rng       *rand.Rand
	now       int64 // the clock updatedAt follows, epoch ms
	spacingMs float64
	pool      []*finding
	committed int // versions planned for open ids but not yet emitted
}

func newScheduler(cfg Config) *scheduler {
	return &scheduler{
		cfg:       cfg,
		rng:       rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6764_6578_706f_7274)), // "gdexport"
		now:       cfg.Start.UnixMilli(),
		spacingMs: float64(cfg.Spacing.Milliseconds()),
	}
}

// run calls emit Versions times, in emission order.
func (s *scheduler) run(emit func(f *finding, v int) error) error {
	for emitted := 0; emitted < s.cfg.Versions; emitted++ {
		s.tick()
		remaining := s.cfg.Versions - emitted - s.committed
		var f *finding
		if remaining > 0 && (len(s.pool) == 0 || (len(s.pool) < poolSize && s.rng.Float64() < 0.4)) {
			f = s.open(remaining)
		} else {
			i := s.rng.IntN(len(s.pool))
			f = s.pool[i]
			f.versions[f.next].updatedAt = s.now
			s.committed--
		}
		v := f.next
		f.next++
		if f.next == len(f.versions) {
			s.close(f)
		}
		if err := emit(f, v); err != nil {
			return err
		}
	}
	return nil
}

// tick advances the clock by an exponential gap of mean Spacing, at least
// 1 ms, so updatedAt rises strictly.
func (s *scheduler) tick() {
	gap := int64(s.rng.ExpFloat64() * s.spacingMs)
	s.now += max(gap, 1)
}

// open starts a new finding id whose first version is emitted now.
func (s *scheduler) open(budget int) *finding {
	n := 1
	for n < s.cfg.MaxVersionsPerID && s.rng.Float64() < 0.55 {
		n++
	}
	n = min(n, budget)
	f := &finding{
		seed:      s.rng.Uint64(),
		account:   s.cfg.Accounts[s.rng.IntN(len(s.cfg.Accounts))],
		region:    s.cfg.Regions[s.rng.IntN(len(s.cfg.Regions))],
		kind:      s.rng.IntN(len(catalog)),
		createdAt: s.now,
		versions:  make([]version, n),
	}
	count := int64(1 + s.rng.IntN(3))
	for i := range f.versions {
		f.versions[i].count = count
		count += 1 + int64(s.rng.ExpFloat64()*4)
	}
	f.versions[0].updatedAt = s.now
	s.planArchive(f)
	s.committed += n - 1
	if n > 1 {
		s.pool = append(s.pool, f)
	}
	return f
}

// planArchive marks versions archived: an id is archived with probability
// ArchivedShare; some archived ids are active in their first version (a user
// archived them later) and some are unarchived in their last (B1).
func (s *scheduler) planArchive(f *finding) {
	// About one archived id in six has a version left active by the
	// patterns below; choosing ids a little more often keeps the share of
	// archived versions near ArchivedShare.
	if s.cfg.ArchivedShare <= 0 || s.rng.Float64() >= s.cfg.ArchivedShare*archivedCorrection {
		return
	}
	n := len(f.versions)
	from, to := 0, n
	if n >= 2 && s.rng.Float64() < 0.25 {
		from = 1 // active, then archived
	}
	if n-from >= 2 && s.rng.Float64() < 0.4 {
		to = n - 1 // archived, then unarchived
	}
	for i := from; i < to; i++ {
		f.versions[i].archived = true
	}
}

func (s *scheduler) close(f *finding) {
	for i, p := range s.pool {
		if p == f {
			s.pool[i] = s.pool[len(s.pool)-1]
			s.pool = s.pool[:len(s.pool)-1]
			return
		}
	}
}
