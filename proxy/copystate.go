package proxy

// followCopy records that the message numbered seq may run COPY FROM
// STDIN: the client's COPY messages and a Sync sent during it depend on
// whether the server is copying when it reads them.
func (sp *sessionPolicy) followCopy(seq uint64, policy bool) {
	sp.copySeq, sp.copyPolicy, sp.copyEnds = seq, policy, 0
}

// settleCopy tells whether PostgreSQL will be reading COPY data when it
// reaches the client's next message: a Sync sent during a COPY is
// ignored by the server and so must not be expected to be answered, and
// COPY data is relayed only into a COPY the server has started. It waits
// until the tracker has seen the server catch up with the client's ends of
// the COPYs so far and either copy again or finish the message. The server
// gets there without more input from the client once it flushes what it
// has buffered (in the extended protocol it would wait for a Flush or
// Sync): the proxy sends a Flush of its own, which has no answer and
// which PostgreSQL ignores while copying. So waiting cannot deadlock. ok
// is false when the server side ended.
func (s *session) settleCopy() (running, ok bool) {
	sp := s.pol
	for {
		running, settled, wait := s.track.CopyIn(sp.copySeq, sp.copyEnds)
		if settled {
			return running, true
		}
		if err := s.sw.Message('H', nil); err != nil {
			return false, false
		}
		if err := s.sw.Flush(); err != nil {
			return false, false
		}
		if !s.await(wait) {
			return false, false
		}
	}
}
