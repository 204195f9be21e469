//! The bus: fans events out to every live stream of this instance, in log order.
//!
//! One task follows the event log. It wakes when this process commits events, when
//! PostgreSQL says another instance did (`LISTEN`), and once a second as a safety net; each
//! time it reads every event after its position and broadcasts them in order. Streams
//! subscribe to that broadcast. Publishers never wait for streams: a stream that falls behind
//! the broadcast's buffer learns it missed events and tells its client to refetch.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::Result;
use crate::db::Db;
use crate::events::{self, Event, NOTIFY_CHANNEL};

/// Events read from the log per query.
const BATCH: i64 = 1000;

/// The in-process fan-out of the event log.
#[derive(Debug)]
pub struct Bus {
    sender: broadcast::Sender<Arc<Event>>,
    head: AtomicI64,
}

impl Bus {
    /// Starts following the log from its current end, holding the last `buffer` events (at
    /// least 1; tokio rounds it up to a power of two) for streams that are slow to take them:
    /// a stream further behind is told it lags.
    pub async fn start(db: Db, buffer: usize) -> Result<Arc<Bus>> {
        let head = events::bounds(&db).await?.map_or(0, |(_, max)| max);
        let (sender, _) = broadcast::channel(buffer.max(1));
        let bus = Arc::new(Bus { sender, head: AtomicI64::new(head) });
        tokio::spawn(follow(db, Arc::downgrade(&bus)));
        Ok(bus)
    }

    /// A receiver of every event broadcast from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }

    /// The id of the last event broadcast.
    pub fn head(&self) -> i64 {
        self.head.load(Ordering::Acquire)
    }

    /// How many streams are subscribed.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }
}

/// Follows the log until the bus is dropped.
async fn follow(db: Db, bus: std::sync::Weak<Bus>) {
    let mut listener = match db.postgres_pool() {
        Some(pool) => match sqlx::postgres::PgListener::connect_with(pool).await {
            Ok(mut l) => match l.listen(NOTIFY_CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN failed; other instances' events arrive by polling");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "no LISTEN connection; other instances' events arrive by polling");
                None
            }
        },
        None => None,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = db.events_written() => {},
            _ = tick.tick() => {},
            n = async { match listener.as_mut() { Some(l) => l.try_recv().await.map(|_| ()), None => std::future::pending().await } } => {
                if let Err(e) = n {
                    // sqlx reconnects on the next call; wait a little so a database that is
                    // down is not hammered.
                    tracing::warn!(error = %e, "LISTEN connection failed; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        if db.is_closed() {
            return;
        }
        let Some(bus) = bus.upgrade() else { return };
        loop {
            let head = bus.head();
            match events::since(&db, head, None, BATCH).await {
                Ok(batch) => {
                    let full = batch.len() as i64 == BATCH;
                    for e in batch {
                        bus.head.store(e.id, Ordering::Release);
                        // No subscribers is not an error: nobody is watching.
                        let _ = bus.sender.send(Arc::new(e));
                    }
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the event log failed; retrying");
                    break;
                }
            }
        }
    }
}
