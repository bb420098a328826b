package spool

// CONTRACT (to be implemented by the spool work; signatures are what other
// packages code against — extend, do not rename):
//
//	type Options struct {
//		LockTimeout time.Duration    // bounded wait for the file lock; 0 means the default (2s), never forever
//		Now         func() time.Time // clock; nil means time.Now
//		Mode        os.FileMode      // file mode for a new spool; 0 means 0600
//	}
//	func Open(path string, o Options) (*Spool, error)          // creates dirs/file if missing; ErrLocked / ErrCorrupt wrapped with the path
//	func (s *Spool) Close() error
//	func (s *Spool) Path() string
//	func (s *Spool) Submit(ctx context.Context, env Envelope, body io.Reader) (ID, error) // returns after fsync; ErrFull wrapped on write failure
//	func (s *Spool) LeaseDue(now time.Time, max int, lease time.Duration) ([]*Message, error)
//	        // up to max due, unheld messages; for each: Attempts++, LastAttempt=now, NextAttempt=now+lease; committed before return
//	func (s *Spool) NextDue() (time.Time, bool, error)        // earliest NextAttempt of an unheld message
//	func (s *Spool) OpenBody(id ID) (io.ReadCloser, error)    // streams the body in bounded memory (a read tx per chunk)
//	func (s *Spool) Update(id ID, results []Result) error     // persists per-recipient outcomes as soon as known
//	func (s *Spool) Defer(id ID, next time.Time, reason string) error // reschedule (ends the lease)
//	func (s *Spool) Delete(id ID) error                       // remove record and body
//	func (s *Spool) Get(id ID) (*Message, error)
//	func (s *Spool) List(fn func(*Message) error) error       // in ID (arrival) order
//	func (s *Spool) Hold(id ID) error
//	func (s *Spool) Release(id ID) error
//	func (s *Spool) Flush() (int, error)                      // every unheld message due now
//	func (s *Spool) Stats() (Stats, error)                    // Count, Held, Oldest time.Time, Bytes
//	func (s *Spool) Compact() error
//
//	type Result struct {
//		Index int      // index into Envelope.Recipients
//		State State    // Pending (deferred), Delivered or Bounced
//		Reply Reply
//		Relay string
//	}
