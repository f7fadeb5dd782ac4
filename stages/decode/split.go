package decode

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/valyala/fastjson"

	"github.com/gdexport/gdexport/pipeline"
)

// MaxDocumentSize bounds what Split holds in memory at once: one finding, one
// JSON Lines line or one document that is not streamed. Larger ones are
// refused (and skipped) instead of being loaded.
const MaxDocumentSize = 64 << 20

// splitBufferSize is Split's read buffer; it is also how far Split looks
// ahead to tell JSON Lines from a document.
const splitBufferSize = 1 << 20

// Item is one finding found by Split, or one refusal.
type Item struct {
	// Pos says where the item is in the input: "document" for a single
	// finding or event, "item 2" (1-based) in a JSON array, "Findings[4]" or
	// "findings[0]" (0-based, as the key is spelt) in get-findings output,
	// "line 3" in JSON Lines, and combinations such as "line 3 item 2" for
	// an array on a JSON Lines line.
	Pos string
	// Raw is the normalised finding (see Normalize): the bytes to publish. It
	// is nil when Err is set. Split never reuses it.
	Raw []byte
	// AccountID and Region are the finding's, as text; they name the ingest
	// subject and are never empty when Err is nil.
	AccountID, Region string
	// ID is the finding's id ("" when it has none: the pipeline judges that).
	ID string
	// UpdatedAt is updatedAt normalised to pipeline.TimeLayout (RFC 3339, UTC,
	// milliseconds) when it parses as a timestamp, else its raw text ("" when
	// absent). With ID it forms the Nats-Msg-Id.
	UpdatedAt string
	// Offset is how many input bytes Split had consumed when it produced the
	// item, for progress reports.
	Offset int64
	// Err is set when publish must refuse the item: it wraps ErrInvalid and
	// says why (not JSON, no accountId or region, an EventBridge event of
	// another detail-type, a filter document, larger than MaxDocumentSize).
	Err error
}

// Split streams one input (a file or stdin) of any of DESIGN.md §3's forms and
// calls fn once per finding, in input order:
//
//   - a single finding, pretty-printed or on one line;
//   - a JSON array of findings or of EventBridge events (streamed element by
//     element, however large);
//   - JSON Lines: one finding, event, array or get-findings response per line;
//     blank lines are skipped;
//   - `aws guardduty get-findings` output, {"Findings":[…]} (PascalCase) or
//     {"findings":[…]} (camelCase): streamed when the key comes first;
//   - EventBridge events, unwrapped to their detail.
//
// The input is JSON Lines when its first non-blank line is a complete JSON
// value on its own (or, unless it is a lone "{" or "[", when the second one
// is); otherwise it is read as a sequence of JSON documents.
//
// Split refuses only what publish cannot route, calling fn with Item.Err set
// and going on with the rest: text that is not JSON (only that line in JSON
// Lines; in a document, the document, after which Split stops because it
// cannot find the next one), a finding without accountId or region or whose
// accountId or region cannot be a subject token, an EventBridge event of
// another detail-type, a filter document, a value larger than
// MaxDocumentSize. Everything else (a missing id, a bad updatedAt …) is
// passed on: the pipeline judges it. An empty input is one refusal.
//
// Split returns fn's first error, or an error reading r; refusals are not
// errors. It holds at most MaxDocumentSize plus a 1 MiB buffer in memory.
func Split(r io.Reader, fn func(Item) error) error {
	s := &splitter{br: bufio.NewReaderSize(r, splitBufferSize), fn: fn, line: 1}
	return s.run()
}

// errStop ends a split early after a refusal Split cannot resynchronise from.
var errStop = errors.New("stop")

type splitter struct {
	br   *bufio.Reader
	fn   func(Item) error
	line int   // line number of the next unread byte
	off  int64 // bytes consumed
	buf  []byte
}

func (s *splitter) run() error {
	if b, _ := s.br.Peek(3); bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
		s.discard(3)
	}
	if _, err := s.skipSpace(); err == io.EOF {
		return s.refuse("document", invalidf("not JSON: empty input"))
	} else if err != nil {
		return s.readErr(err)
	}
	var err error
	if s.looksLikeJSONLines() {
		err = s.jsonLines()
	} else {
		err = s.documents()
	}
	if err == errStop {
		return nil
	}
	return err
}

// looksLikeJSONLines decides the input form from its first lines. It reads
// only as far as it needs (at most the read buffer), so a slow pipe is not
// held up until the buffer fills.
func (s *splitter) looksLikeJSONLines() bool {
	for {
		n := max(s.br.Buffered(), 1)
		buf, err := s.br.Peek(n)
		atEOF := err != nil
		jsonLines, decided := decideForm(buf, atEOF)
		if decided {
			return jsonLines
		}
		if atEOF || len(buf) >= splitBufferSize {
			return false
		}
		// Wait for at least one more byte.
		if _, err := s.br.Peek(len(buf) + 1); err != nil && len(buf) == s.br.Buffered() {
			jsonLines, _ := decideForm(buf, true)
			return jsonLines
		}
	}
}

// decideForm tells JSON Lines (the first non-blank line is a JSON value on
// its own, or the second is while the first is not a lone "{" or "[") from a
// document. decided is false when buf holds too few lines to tell.
func decideForm(buf []byte, atEOF bool) (jsonLines, decided bool) {
	line1, rest, ok := nextLine(buf, atEOF)
	if !ok {
		return false, false
	}
	if isJSON(line1) {
		return true, true
	}
	if string(line1) == "{" || string(line1) == "[" {
		return false, true
	}
	for {
		var line2 []byte
		line2, rest, ok = nextLine(rest, atEOF)
		if !ok {
			return false, atEOF
		}
		if len(line2) > 0 {
			return (line2[0] == '{' || line2[0] == '[') && isJSON(line2), true
		}
	}
}

// nextLine returns the first line of buf, trimmed, and what follows it. ok is
// false when the line does not end inside buf (unless atEOF).
func nextLine(buf []byte, atEOF bool) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		if !atEOF || len(buf) == 0 {
			return nil, nil, false
		}
		return bytes.TrimSpace(buf), nil, true
	}
	return bytes.TrimSpace(buf[:i]), buf[i+1:], true
}

func isJSON(b []byte) bool {
	_, err := inspect(b)
	return err == nil
}

// jsonLines reads the input line by line.
func (s *splitter) jsonLines() error {
	first := true
	for {
		if _, err := s.skipSpace(); err == io.EOF {
			return nil
		} else if err != nil {
			return s.readErr(err)
		}
		lineNo := s.line
		line, tooBig, err := s.readLine()
		if err != nil && err != io.EOF {
			return s.readErr(err)
		}
		prefix := "line " + strconv.Itoa(lineNo)
		if first {
			first = false
			// A single line is a document, not JSON Lines.
			if _, perr := s.skipSpace(); perr == io.EOF {
				prefix = ""
			} else if perr != nil {
				return s.readErr(perr)
			}
		}
		if tooBig {
			if err := s.refuse(pos(prefix, "document"), invalidf("larger than %d MiB", MaxDocumentSize>>20)); err != nil {
				return err
			}
			continue
		}
		if _, err := s.document(prefix, bytes.TrimSpace(line)); err != nil {
			return err
		}
	}
}

// readLine reads up to and including the next newline into s.buf. tooBig
// reports a line longer than MaxDocumentSize, which is consumed but not kept.
func (s *splitter) readLine() (line []byte, tooBig bool, err error) {
	s.buf = s.buf[:0]
	for {
		frag, err := s.br.ReadSlice('\n')
		s.off += int64(len(frag))
		if !tooBig {
			if len(s.buf)+len(frag) > MaxDocumentSize {
				tooBig = true
				s.buf = s.buf[:0]
			} else {
				s.buf = append(s.buf, frag...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if len(frag) > 0 && frag[len(frag)-1] == '\n' {
			s.line++
		}
		return s.buf, tooBig, err
	}
}

// documents reads the input as a sequence of JSON documents, streaming
// top-level arrays and get-findings responses.
func (s *splitter) documents() error {
	prefix := ""
	for n := 0; ; n++ {
		c, err := s.skipSpace()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return s.readErr(err)
		}
		if n > 0 {
			prefix = "line " + strconv.Itoa(s.line)
		}
		if c == '[' {
			s.discard(1)
			if err := s.streamArray(prefix, "item ", 1); err != nil {
				return err
			}
			continue
		}
		if key, n, ok := s.peekFindingsKey(); ok {
			s.discard(n)
			if err := s.streamArray(prefix, key+"[", 0); err != nil {
				return err
			}
			if err := s.skipMembers(pos(prefix, "document")); err != nil {
				return err
			}
			continue
		}
		doc, tooBig, err := s.readValue()
		if err != nil {
			return s.notJSON(pos(prefix, "document"), err)
		}
		if tooBig {
			if err := s.refuse(pos(prefix, "document"), invalidf("larger than %d MiB", MaxDocumentSize>>20)); err != nil {
				return err
			}
			continue
		}
		notJSON, err := s.document(prefix, doc)
		if err != nil {
			return err
		}
		if notJSON {
			return errStop
		}
	}
}

// peekFindingsKey reports a document that starts `{"Findings":[` (or
// "findings"), with any whitespace, within the read buffer, and how many bytes
// that opening takes.
func (s *splitter) peekFindingsKey() (key string, n int, ok bool) {
	b, _ := s.br.Peek(4096)
	i := 0
	if i >= len(b) || b[i] != '{' {
		return "", 0, false
	}
	i = skipSpace(b, i+1)
	switch {
	case bytes.HasPrefix(b[i:], []byte(`"Findings"`)):
		key = "Findings"
	case bytes.HasPrefix(b[i:], []byte(`"findings"`)):
		key = "findings"
	default:
		return "", 0, false
	}
	i = skipSpace(b, i+len(key)+2)
	if i >= len(b) || b[i] != ':' {
		return "", 0, false
	}
	i = skipSpace(b, i+1)
	if i >= len(b) || b[i] != '[' {
		return "", 0, false
	}
	return key, i + 1, true
}

// streamArray reads the elements of an array whose '[' is consumed, naming
// them label+index (1-based "item N" or 0-based "Findings[N]").
func (s *splitter) streamArray(prefix, label string, base int) error {
	name := func(k int) string {
		if base == 0 {
			return pos(prefix, label+strconv.Itoa(k)+"]")
		}
		return pos(prefix, label+strconv.Itoa(k+base))
	}
	for k := 0; ; k++ {
		c, err := s.skipSpace()
		if err != nil {
			return s.notJSON(name(k), err)
		}
		if c == ']' {
			s.discard(1)
			return nil
		}
		if k > 0 {
			if c != ',' {
				return s.notJSON(name(k), fmt.Errorf("found %q where ',' or ']' should follow %s", c, name(k-1)))
			}
			s.discard(1)
			if _, err := s.skipSpace(); err != nil {
				return s.notJSON(name(k), err)
			}
		}
		elem, tooBig, err := s.readValue()
		if err != nil {
			return s.notJSON(name(k), err)
		}
		if tooBig {
			if err := s.refuse(name(k), invalidf("larger than %d MiB", MaxDocumentSize>>20)); err != nil {
				return err
			}
			continue
		}
		if err := s.finding(name(k), elem); err != nil {
			return err
		}
	}
}

// skipMembers reads the rest of a get-findings object after its array:
// members other than the findings are not findings.
func (s *splitter) skipMembers(where string) error {
	for {
		c, err := s.skipSpace()
		if err != nil {
			return s.notJSON(where, err)
		}
		if c == '}' {
			s.discard(1)
			return nil
		}
		if c != ',' {
			return s.notJSON(where, fmt.Errorf("found %q after the findings array", c))
		}
		s.discard(1)
		if c, err = s.skipSpace(); err != nil {
			return s.notJSON(where, err)
		}
		if c != '"' {
			return s.notJSON(where, fmt.Errorf("found %q where a key should be", c))
		}
		if _, _, err := s.readValue(); err != nil {
			return s.notJSON(where, err)
		}
		if c, err = s.skipSpace(); err != nil {
			return s.notJSON(where, err)
		}
		if c != ':' {
			return s.notJSON(where, fmt.Errorf("found %q where ':' should follow a key", c))
		}
		s.discard(1)
		if _, _, err := s.readValue(); err != nil {
			return s.notJSON(where, err)
		}
	}
}

// document handles one complete, in-memory document: an array, a
// get-findings response or a finding (or event). notJSON reports that doc was
// not JSON at all.
func (s *splitter) document(prefix string, doc []byte) (notJSON bool, err error) {
	d, ierr := inspect(doc)
	if ierr != nil {
		return true, s.refuse(pos(prefix, "document"), ierr)
	}
	switch {
	case d.first == '[':
		return false, s.elements(doc, func(k int, elem []byte) error {
			return s.finding(pos(prefix, "item "+strconv.Itoa(k+1)), elem)
		})
	case d.first == '{' && !d.account && d.detailType == 0 && d.findings != 0 && doc[d.findings-1] == '[':
		key := "findings["
		if d.findingsPascal {
			key = "Findings["
		}
		return false, s.elements(doc[d.findings-1:], func(k int, elem []byte) error {
			return s.finding(pos(prefix, key+strconv.Itoa(k)+"]"), elem)
		})
	default:
		return false, s.finding(pos(prefix, "document"), doc)
	}
}

// elements calls fn with each element of the valid JSON array at the start of
// b.
func (s *splitter) elements(b []byte, fn func(k int, elem []byte) error) error {
	i := 1
	for k := 0; ; k++ {
		i = skipSpace(b, i)
		if b[i] == ']' {
			return nil
		}
		e := skipValue(b, i)
		if err := fn(k, b[i:e]); err != nil {
			return err
		}
		i = skipSpace(b, e)
		if b[i] == ',' {
			i++
		}
	}
}

// finding normalises one finding or event and hands it to fn.
func (s *splitter) finding(where string, doc []byte) error {
	raw, err := Normalize(nil, doc)
	if err != nil {
		return s.refuse(where, err)
	}
	it := Item{Pos: where, Offset: s.off}
	p := parsers.Get()
	v, err := p.ParseBytes(raw)
	if err == nil {
		err = routeFields(v, &it)
	}
	parsers.Put(p)
	if err != nil {
		return s.refuse(where, err)
	}
	it.Raw = raw
	return s.fn(it)
}

// routeFields reads what publish needs from a normalised finding.
func routeFields(v *fastjson.Value, it *Item) error {
	var err error
	if it.AccountID, err = subjectToken("accountId", v.Get("accountId")); err != nil {
		return err
	}
	if it.Region, err = subjectToken("region", v.Get("region")); err != nil {
		return err
	}
	if id := v.Get("id"); id != nil && id.Type() == fastjson.TypeString {
		b, _ := id.StringBytes()
		it.ID = string(b)
	}
	if u := v.Get("updatedAt"); u != nil {
		if ms, ok := ParseTimestamp(u); ok {
			it.UpdatedAt = pipeline.FormatMillis(ms)
		} else if u.Type() == fastjson.TypeString {
			b, _ := u.StringBytes()
			it.UpdatedAt = string(b)
		} else {
			it.UpdatedAt = string(u.MarshalTo(nil))
		}
	}
	return nil
}

// subjectToken reads accountId or region, which publish puts in the subject
// findings.<region>.<accountId>: they must be non-empty strings that can be
// one subject token.
func subjectToken(name string, v *fastjson.Value) (string, error) {
	if v == nil || v.Type() == fastjson.TypeNull {
		return "", invalidf("missing %s", name)
	}
	if v.Type() != fastjson.TypeString {
		return "", invalidf("%s %s is not a string", name, render(v))
	}
	b, _ := v.StringBytes()
	if len(b) == 0 {
		return "", invalidf("%s is empty", name)
	}
	for _, c := range b {
		if c <= ' ' || c == 0x7f || c == '.' || c == '*' || c == '>' {
			return "", invalidf("%s %s cannot name a NATS subject token", name, quote(b))
		}
	}
	return string(b), nil
}

// refuse reports a refusal to fn.
func (s *splitter) refuse(where string, err error) error {
	return s.fn(Item{Pos: where, Offset: s.off, Err: err})
}

// notJSON refuses a document Split cannot find the end of, and stops.
func (s *splitter) notJSON(where string, err error) error {
	var ie *invalidError
	switch {
	case errors.As(err, &ie):
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		err = invalidf("not JSON: unexpected end of input")
	case errors.Is(err, errRead):
		return err
	default:
		err = invalidf("not JSON: %v", err)
	}
	if ferr := s.refuse(where, err); ferr != nil {
		return ferr
	}
	return errStop
}

// errRead marks a failure to read the input, as opposed to bad input.
var errRead = errors.New("read input")

func (s *splitter) readErr(err error) error {
	if errors.Is(err, errRead) {
		return err
	}
	return fmt.Errorf("%w: %w", errRead, err)
}

func pos(prefix, p string) string {
	switch {
	case prefix == "":
		return p
	case p == "document":
		return prefix
	default:
		return prefix + " " + p
	}
}

// discard consumes n buffered bytes.
func (s *splitter) discard(n int) {
	b, _ := s.br.Peek(n)
	s.line += bytes.Count(b, []byte{'\n'})
	d, _ := s.br.Discard(n)
	s.off += int64(d)
}

// skipSpace consumes whitespace and returns the next byte without consuming
// it (io.EOF at the end of the input).
func (s *splitter) skipSpace() (byte, error) {
	for {
		b, err := s.br.Peek(1)
		if len(b) == 0 {
			if err == nil || err == io.EOF {
				return 0, io.EOF
			}
			return 0, s.readErr(err)
		}
		switch b[0] {
		case '\n':
			s.line++
			fallthrough
		case ' ', '\t', '\r':
			s.br.Discard(1)
			s.off++
		default:
			return b[0], nil
		}
	}
}

// readValue reads the raw bytes of the JSON value at the read position into
// s.buf without validating it: it finds the end of strings, of balanced
// brackets, or of a number or literal. tooBig reports a value larger than
// MaxDocumentSize, which is consumed but not kept. The error is
// io.ErrUnexpectedEOF for a value cut short, a syntax error for a byte no
// value starts with, or a read error.
func (s *splitter) readValue() (value []byte, tooBig bool, err error) {
	s.buf = s.buf[:0]
	first, err := s.skipSpace()
	if err != nil {
		return nil, false, err
	}
	switch first {
	case ',', ':', ']', '}':
		return nil, false, fmt.Errorf("found %q where a value should start", first)
	}
	scalar := first != '{' && first != '[' && first != '"'
	depth, inString, escaped := 0, false, false
	read := 0
	for {
		if s.br.Buffered() == 0 {
			if _, err := s.br.Peek(1); err != nil {
				if err == io.EOF {
					if scalar && read > 0 {
						return s.buf, tooBig, nil
					}
					return nil, false, io.ErrUnexpectedEOF
				}
				return nil, false, s.readErr(err)
			}
		}
		chunk, _ := s.br.Peek(s.br.Buffered())
		i, done := 0, false
	scan:
		for ; i < len(chunk); i++ {
			c := chunk[i]
			switch {
			case inString:
				switch {
				case escaped:
					escaped = false
				case c == '\\':
					escaped = true
				case c == '"':
					inString = false
					if depth == 0 {
						i++
						done = true
						break scan
					}
				}
			case scalar:
				if isDelim(c) {
					done = true
					break scan
				}
			default:
				switch c {
				case '"':
					inString = true
				case '{', '[':
					depth++
				case '}', ']':
					depth--
					if depth == 0 {
						i++
						done = true
						break scan
					}
				}
			}
		}
		read += i
		if !tooBig {
			if len(s.buf)+i > MaxDocumentSize {
				tooBig = true
				s.buf = s.buf[:0]
			} else {
				s.buf = append(s.buf, chunk[:i]...)
			}
		}
		s.discard(i)
		if done {
			return s.buf, tooBig, nil
		}
	}
}
