// Consistency under concurrency (tests/lib/consistency_suite.mjs), with the
// default of one I/O thread per instance.
import { consistencySuite } from '../lib/consistency_suite.mjs';

consistencySuite();
