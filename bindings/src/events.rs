//! The core's flow events on their way to the app: the slot holding the listener set with
//! `set_flow_listener` ([`ListenerSlot`]) and the facade's callback that forwards each
//! event to it as a view ([`event_forwarder`]). Below the core object and the flows, which
//! both hold the slot.

use std::sync::{Arc, RwLock};

use sunstorm_core::sunstorm::{Event, EventListener};

use crate::flow_views::PairStateView;
use crate::platform::FlowListener;
use crate::views::FlowProgress;

/// Where the core's events go: the listener set with `set_flow_listener`, if any.
pub(crate) type ListenerSlot = Arc<RwLock<Option<Arc<dyn FlowListener>>>>;

/// The facade's event callback, forwarding to the current [`FlowListener`].
pub(crate) fn event_forwarder(slot: ListenerSlot) -> EventListener {
    Arc::new(move |e: &Event| {
        let Some(l) = slot.read().ok().and_then(|g| g.clone()) else { return };
        let r = match e {
            Event::PairState(s) => l.on_pair_state(PairStateView::from(s.as_ref())),
            Event::Progress { progress, .. } => l.on_progress(FlowProgress::from(progress.clone())),
        };
        if let Err(err) = r {
            tracing::warn!(target: "sunstorm_ffi", error = %err, "flow listener failed");
        }
    })
}
