"""Double of modules/call_queue.py: the lock that serialises GPU work."""

import threading

queue_lock = threading.RLock()
