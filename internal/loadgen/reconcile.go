package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/journal"
)

// Target says where a tapproof and its stack run.
type Target struct {
	Broker       Broker // the broker, reached as the operator
	DataDir      string // tapproof's --data, for the logs' keys
	TrillianAddr string
	InfluxURL    string
	InfluxDB     string
}

// Report is what Reconcile found.
type Report struct {
	Published    int // distinct readings published
	Journaled    int // readings in the journals
	Leaves       int // leaves in the Trillian logs: readings, enrollments, notice records...
	Enrollments  int // enrollment entries in the journals
	Notices      int // records of notices to the public in the journals
	InfluxPoints int
	Checkpoints  int // checkpoints verified against the log's leaves
	Problems     []string
}

// quiet is how long a journal must not grow before Reconcile reads it.
const quiet = 3 * time.Second

func (r *Report) problem(format string, args ...any) {
	if len(r.Problems) < 20 {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// Reconcile waits (up to wait) for every published reading to be anchored
// and then checks, for every utility that msgs touch:
//   - every published reading was accepted exactly once: it is in the
//     journal once, with the bytes that were published;
//   - the journal holds nothing else but enrollments and records of notices;
//   - the Trillian log holds exactly the journal, leaf for leaf;
//   - InfluxDB holds one point per accepted reading;
//   - every checkpoint published is signed by the log's key and commits to
//     exactly the log's first size leaves.
//
// An error reading any of them (JetStream answering "temporarily
// unavailable" while a cluster heals, say) starts the whole reconciliation
// again, until wait has passed.
func Reconcile(ctx context.Context, t Target, msgs []Msg, wait time.Duration) (*Report, error) {
	deadline := time.Now().Add(wait)
	for {
		rep, err := reconcile(ctx, t, msgs, time.Until(deadline))
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return rep, err
		}
		time.Sleep(time.Second)
	}
}

func reconcile(ctx context.Context, t Target, msgs []Msg, wait time.Duration) (*Report, error) {
	rep := &Report{}
	want := map[string]map[string][]byte{} // utility -> key -> data
	for _, m := range msgs {
		if want[m.Utility] == nil {
			want[m.Utility] = map[string][]byte{}
		}
		want[m.Utility][m.Key()] = m.Data
	}
	for _, u := range want {
		rep.Published += len(u)
	}
	nc, err := t.Broker.Service() // the journal is read through consumers, which the operator may not create
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	j, err := openJournal(ctx, js, wait)
	if err != nil {
		return nil, err
	}
	tc, err := anchor.Dial(ctx, t.TrillianAddr)
	if err != nil {
		return nil, err
	}
	defer tc.Close()

	deadline := time.Now().Add(wait)
	for utility, readings := range want {
		info, err := j.Log(ctx, utility)
		if err != nil {
			return nil, err
		}
		skey, err := os.ReadFile(filepath.Join(t.DataDir, "keys", utility+".note-key"))
		if err != nil {
			return nil, err
		}
		signer, err := note.NewSigner(string(skey))
		if err != nil {
			return nil, err
		}
		verifier, err := note.NewVerifier(info.VerifierKey)
		if err != nil {
			return nil, err
		}
		lg, err := tc.Log(anchor.LogConfig{TreeID: info.TreeID, Signer: signer, Verifier: verifier})
		if err != nil {
			return nil, err
		}
		// The checkpoints are read before the journal and the log: the
		// log only grows, so every checkpoint read now covers leaves the
		// reads below will find. (Read after them, a notifier still working
		// through its backlog had appended notice records, and checkpoints
		// covered leaves that had not been read.)
		cps, err := readCheckpoints(ctx, js, utility)
		if err != nil {
			return nil, err
		}
		// Wait until every published reading is journaled and anchored,
		// and the journal has stopped growing: notice records may still
		// follow the last reading.
		var entries []journal.Entry
		last, stableSince := -1, time.Now()
		for {
			if entries, err = readJournal(ctx, js, utility); err != nil {
				return nil, err
			}
			n := 0
			for _, e := range entries {
				if e.Kind == journal.KindReading {
					if _, ok := readings[readingKey(e)]; ok {
						n++
					}
				}
			}
			if len(entries) != last {
				last, stableSince = len(entries), time.Now()
			}
			size, _, err := lg.Root(ctx)
			done := err == nil && n >= len(readings) && size >= uint64(len(entries))
			if done && (time.Since(stableSince) >= quiet || time.Now().After(deadline)) {
				break
			}
			if time.Now().After(deadline) {
				rep.problem("%s: after %s, %d of %d readings journaled, log size %d of %d entries", utility, wait, n, len(readings), size, len(entries))
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		// The journal: each published reading once, with its bytes; nothing else.
		seen := map[string]int{}
		for _, e := range entries {
			switch e.Kind {
			case journal.KindEnrollment:
				rep.Enrollments++
			case journal.KindNotice:
				rep.Notices++
			}
			if e.Kind != journal.KindReading {
				continue
			}
			rep.Journaled++
			k := readingKey(e)
			seen[k]++
			if seen[k] == 2 {
				rep.problem("%s: reading %s journaled twice", utility, k)
			}
			data, ok := readings[k]
			if !ok {
				rep.problem("%s: journal holds reading %s, which was not published", utility, k)
				continue
			}
			if !bytes.Equal(data, e.Bytes) {
				rep.problem("%s: reading %s journaled with other bytes than published", utility, k)
			}
		}
		for k := range readings {
			if seen[k] == 0 {
				rep.problem("%s: published reading %s was never accepted", utility, k)
			}
		}
		// The log: exactly the journal, leaf for leaf.
		leaves, err := readLeaves(ctx, lg, uint64(len(entries)))
		if err != nil {
			return nil, err
		}
		rep.Leaves += len(leaves)
		if len(leaves) != len(entries) {
			rep.problem("%s: log has %d leaves, journal %d entries", utility, len(leaves), len(entries))
		}
		for i := range min(len(leaves), len(entries)) {
			if !bytes.Equal(leaves[i], entries[i].Bytes) {
				rep.problem("%s: leaf %d differs from journal entry %d", utility, i, i)
			}
		}
		// InfluxDB: one point per accepted reading, once its sink, which
		// may lag the anchor, has caught up.
		n, err := InfluxCount(ctx, t.InfluxURL, t.InfluxDB, utility)
		for err == nil && n < readingsIn(entries) && time.Now().Before(deadline) {
			time.Sleep(250 * time.Millisecond)
			n, err = InfluxCount(ctx, t.InfluxURL, t.InfluxDB, utility)
		}
		if err != nil {
			return nil, err
		}
		rep.InfluxPoints += n
		if readingsIn(entries) != n {
			rep.problem("%s: InfluxDB has %d points, journal %d readings", utility, n, readingsIn(entries))
		}
		// Every checkpoint: signed, and committing to the log's leaves.
		if err := checkCheckpoints(cps, leaves, verifier, rep, utility); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// openJournal attaches to the journal as tapproof runs it, changing
// nothing. On a cluster that has just healed, JetStream may answer
// "temporarily unavailable" for a while; it tries again for up to wait.
func openJournal(ctx context.Context, js jetstream.JetStream, wait time.Duration) (*journal.Journal, error) {
	deadline := time.Now().Add(wait)
	for {
		j, err := journal.Attach(ctx, js)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return j, err
		}
		time.Sleep(time.Second)
	}
}

func readingKey(e journal.Entry) string { return tapproof.ReadingKey(e.Device, e.Seq) }

func readingsIn(es []journal.Entry) int {
	n := 0
	for _, e := range es {
		if e.Kind == journal.KindReading {
			n++
		}
	}
	return n
}

// readJournal reads every entry of utility's journal.
func readJournal(ctx context.Context, js jetstream.JetStream, utility string) ([]journal.Entry, error) {
	s, err := js.Stream(ctx, journal.LogStreamName(utility))
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	last := info.State.LastSeq
	if last == 0 {
		return nil, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	out := make([]journal.Entry, 0, last)
	// On a cluster, an ordered consumer recreated after a stream's leader
	// moved may deliver nothing for a fetch or two: try again before
	// giving up.
	for empty := 0; uint64(len(out)) < last; {
		mb, err := c.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range mb.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			e, err := journal.DecodeEntry(m.Subject(), meta.Sequence.Stream, m.Headers(), m.Data())
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		if got > 0 {
			empty = 0
			continue
		}
		if empty++; empty == 5 {
			return nil, fmt.Errorf("journal of %s: fetched nothing at %d of %d (last error: %v)", utility, len(out), last, mb.Error())
		}
	}
	return out, nil
}

func readLeaves(ctx context.Context, lg *anchor.Log, n uint64) ([][]byte, error) {
	var out [][]byte
	for uint64(len(out)) < n {
		ls, err := lg.Leaves(ctx, uint64(len(out)), min(n-uint64(len(out)), 1000))
		if err != nil {
			return nil, err
		}
		if len(ls) == 0 {
			break
		}
		out = append(out, ls...)
	}
	return out, nil
}

func readCheckpoints(ctx context.Context, js jetstream.JetStream, utility string) ([][]byte, error) {
	s, err := js.Stream(ctx, journal.CheckpointsStream)
	if err != nil {
		return nil, err
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{journal.CheckpointsSubject + "." + utility}})
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for {
		mb, err := c.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range mb.Messages() {
			got++
			out = append(out, m.Data())
		}
		if got == 0 {
			return out, nil
		}
	}
}

// checkCheckpoints verifies each checkpoint's signature and that its root
// is the RFC 6962 root of the first size leaves.
func checkCheckpoints(cps [][]byte, leaves [][]byte, v note.Verifier, rep *Report, utility string) error {
	type cp struct {
		size uint64
		root []byte
	}
	var parsed []cp
	for _, b := range cps {
		c, err := anchor.OpenCheckpoint(b, v)
		if err != nil {
			rep.problem("%s: checkpoint does not verify: %v", utility, err)
			continue
		}
		parsed = append(parsed, cp{c.Size, c.Hash})
	}
	slices.SortFunc(parsed, func(a, b cp) int { return int(a.size) - int(b.size) })
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	next := uint64(0)
	for _, c := range parsed {
		if c.size > uint64(len(leaves)) {
			rep.problem("%s: checkpoint of size %d beyond the log's %d leaves", utility, c.size, len(leaves))
			continue
		}
		for ; next < c.size; next++ {
			if err := r.Append(rfc6962.DefaultHasher.HashLeaf(leaves[next]), nil); err != nil {
				return err
			}
		}
		root, err := r.GetRootHash(nil)
		if err != nil {
			return err
		}
		if c.size == 0 {
			root = rfc6962.DefaultHasher.EmptyRoot()
		}
		if !bytes.Equal(root, c.root) {
			rep.problem("%s: checkpoint of size %d does not commit to the log's first %d leaves", utility, c.size, c.size)
			continue
		}
		rep.Checkpoints++
	}
	return nil
}

// InfluxCount counts the points of utility in InfluxDB.
func InfluxCount(ctx context.Context, base, db, utility string) (int, error) {
	q := url.Values{"db": {db}, "q": {fmt.Sprintf(`SELECT count("value") FROM "reading" WHERE "utility" = '%s'`, utility)}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/query?"+q.Encode(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var res struct {
		Results []struct {
			Series []struct {
				Values [][]any `json:"values"`
			} `json:"series"`
			Error string `json:"error"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return 0, err
	}
	if len(res.Results) == 0 {
		return 0, errors.New("influx: empty answer")
	}
	if res.Results[0].Error != "" {
		return 0, errors.New(res.Results[0].Error)
	}
	if len(res.Results[0].Series) == 0 {
		return 0, nil
	}
	n, _ := res.Results[0].Series[0].Values[0][1].(float64)
	return int(n), nil
}

// Indexes returns the leaf index of every reading in utility's journal, by
// reading key.
func Indexes(ctx context.Context, b Broker, utility string) (map[string]uint64, error) {
	nc, err := b.Service() // the journal is read through consumers, which the operator may not create
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	es, err := readJournal(ctx, js, utility)
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(es))
	for _, e := range es {
		if e.Kind == journal.KindReading {
			out[readingKey(e)] = e.Index
		}
	}
	return out, nil
}
