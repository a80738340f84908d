package ingest

// uncacheEvery is how much of a backlog is read between two page-cache
// drops: large enough that the advice costs nothing next to the reads,
// small enough that a catch-up holds no more than a few MB of its input in
// the page cache at any time.
const uncacheEvery = 8 << 20

// dropReadPages tells the kernel that the pages of tf's file this reader
// has already copied will not be read again. A catch-up reads each byte of
// a backlog once, so keeping its pages would only push the box's useful
// cache out (10 GiB of logs against, say, a model's files) and leave the
// kernel to reclaim them later; on Linux dropping them as we go also costs
// several times less system time than letting them pile up (measured on a
// cold 1 GiB file: 2.1 s of system time per GB read plain, 0.3 s with the
// advice). Plain files only; the advice is best effort and changes nothing
// the reader sees.
func dropReadPages(tf *trackedFile, final bool) {
	if tf.f == nil || tf.gz || tf.lr == nil {
		return
	}
	from, to, ok := tf.lr.uncacheRange(uncacheEvery, final)
	if !ok {
		return
	}
	adviseDontNeed(tf.f, from, to-from)
	tf.lr.uncached = tf.lr.readEnd()
}

// adviseDontNeed is the platform's advice; tests replace it to see the calls.
var adviseDontNeed = adviseDontNeedOS
