//! Reading frames (a 4-byte big-endian length, then a JSON object) and handing each to
//! the caller waiting for its id.

use serde_json::Value;

use super::Shared;

/// The largest frame accepted from the backend.
const MAX_FRAME: usize = 256 * 1024 * 1024;

/// Complete the callers of every whole frame in `buf`; `false` on a broken stream.
pub(super) fn dispatch_frames(buf: &mut Vec<u8>, shared: &Shared) -> bool {
    let mut start = 0;
    while buf.len() - start >= 4 {
        let len = u32::from_be_bytes(buf[start..start + 4].try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME {
            tracing::warn!(len, "frame from backend too large");
            return false;
        }
        if buf.len() - start - 4 < len {
            break;
        }
        let body = &buf[start + 4..start + 4 + len];
        start += 4 + len;
        let object = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => object,
            _ => {
                tracing::warn!("unparseable frame from backend");
                continue;
            }
        };
        let Some(id) = object.get("id").and_then(Value::as_u64) else {
            tracing::warn!("frame from backend without an id");
            continue;
        };
        let waiter = shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some(tx) = waiter {
            let _ = tx.send(Ok(object));
            continue;
        }
        let mut streams = shared.streams.lock().unwrap_or_else(|e| e.into_inner());
        if object.contains_key("event") {
            if let Some(tx) = streams.get(&id) {
                let _ = tx.send(Ok(object));
            }
        } else if let Some(tx) = streams.remove(&id) {
            let _ = tx.send(Ok(object));
        }
    }
    buf.drain(..start);
    true
}
