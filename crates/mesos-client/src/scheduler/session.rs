//! [`Session`]: a framework kept subscribed through dropped streams, silence, redirects
//! and master failover, reconciling its tasks after each re-subscription
//! (shared/docs/MESOS-HTTP-API.md §1.9–1.10, §6).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::{
    Backoff, Calls, Credential, Events, MAX_BACKOFF, MISSED_HEARTBEATS, SchedulerClient, SchedulerError, Subscription,
};
use crate::codec::ContentType;
use crate::v1::scheduler::{Call, Event, call, event};
use crate::v1::{AgentId, FrameworkId, FrameworkInfo, TaskId, TaskState};

/// How a [`Session`] connects and reconnects.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The master's `host:port` (any master: a 307 leads to the leader).
    pub master: String,
    /// The framework; its `id` is filled in at the first SUBSCRIBED and re-used after.
    pub framework: FrameworkInfo,
    /// Protobuf (default) or JSON.
    pub content_type: ContentType,
    /// HTTP basic authentication, e.g. [`Credential::from_env`].
    pub credential: Option<Credential>,
    /// The first wait between SUBSCRIBE attempts; it doubles up to `max_backoff`.
    pub first_backoff: Duration,
    /// The longest wait between SUBSCRIBE attempts.
    pub max_backoff: Duration,
    /// Silent heartbeat intervals after which the subscription is considered lost.
    pub missed_heartbeats: u32,
    /// How long to keep trying to (re-)subscribe before giving up. `None`: 60 s for the
    /// first subscription; after a loss, the framework's `failover_timeout` when it is
    /// positive (after that the master has removed the framework anyway), else 60 s.
    pub give_up_after: Option<Duration>,
}

impl SessionConfig {
    /// Defaults: protobuf, no credentials, backoff 1 s doubling to 15 s, 5 missed heartbeats.
    pub fn new(master: impl Into<String>, framework: FrameworkInfo) -> Self {
        Self {
            master: master.into(),
            framework,
            content_type: ContentType::default(),
            credential: None,
            first_backoff: Duration::from_secs(1),
            max_backoff: MAX_BACKOFF,
            missed_heartbeats: MISSED_HEARTBEATS,
            give_up_after: None,
        }
    }

    fn give_up_after(&self, subscribed_before: bool) -> Duration {
        const FIRST: Duration = Duration::from_secs(60);
        self.give_up_after.unwrap_or_else(|| {
            self.framework
                .failover_timeout
                .filter(|t| subscribed_before && *t > 0.0)
                .and_then(|t| Duration::try_from_secs_f64(t).ok())
                .unwrap_or(FIRST)
        })
    }
}

/// A framework kept subscribed to Mesos.
///
/// Its first [`Events::next_event`] subscribes. After a loss — the stream ended or failed,
/// no event for [`SessionConfig::missed_heartbeats`] heartbeat intervals, a call answered
/// 307/403 — the next `next_event` re-subscribes with the same framework id (backoff
/// between attempts), then asks the master to reconcile every non-terminal task this
/// session launched or heard of, and asks again (backoff) about those without an answer. Every subscription, the first and each later one, begins
/// with a SUBSCRIBED event: drop cached offers there (the master forgets them). An ERROR
/// event ends the subscription and comes back as [`SchedulerError::MasterError`]. After a
/// successful TEARDOWN the stream's end is the session's end (`None`).
///
/// `next_event` is cancel-safe: a future dropped by a `select!` loses no event (a
/// SUBSCRIBED not yet handed over comes with the next call), does not restart the silence
/// timer, which counts from the last event, and does not abandon a SUBSCRIBE in flight or
/// cut a backoff short (the next call goes on with them). Still, one task should own the
/// session and poll it all the time.
///
/// ```no_run
/// use mesos_client::scheduler::{Calls, Events, SchedulerError, Session, SessionConfig};
/// use mesos_client::v1::FrameworkInfo;
/// # async fn run() -> Result<(), SchedulerError> {
/// let framework = FrameworkInfo {
///     user: "root".into(),
///     name: "demo".into(),
///     failover_timeout: Some(7.0 * 86_400.0), // a week to come back after a disconnection
///     ..Default::default()
/// };
/// let mut session = Session::new(SessionConfig::new("127.0.0.1:5050", framework))?;
/// while let Some(event) = session.next_event().await {
///     let event = event?;
///     if let Some(offers) = event.offers {
///         let unwanted = offers.offers.into_iter().map(|o| o.id).collect();
///         session.decline(unwanted, 3600.0).await?;
///     }
///     if let Some(update) = event.update {
///         session.acknowledge(&update.status).await?; // sends nothing for the master's own
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Session {
    client: SchedulerClient,
    config: SessionConfig,
    subscription: Option<Subscription>,
    /// Non-terminal tasks, with their agents when known.
    tasks: BTreeMap<String, Option<AgentId>>,
    lost_since: Option<Instant>,
    subscribed_before: bool,
    reconnections: u32,
    last_loss: Option<String>,
    torn_down: bool,
    /// Roles whose offers are suppressed: re-sent with every re-subscription, which would
    /// otherwise revive them all (shared/docs/MESOS-HTTP-API.md §1.10).
    suppressed: BTreeSet<String>,
    /// Tasks asked about in the current reconciliation and not heard of since.
    unanswered: BTreeSet<String>,
    /// When to ask again about the unanswered tasks, and how long to wait after that.
    reconcile_again: Option<(Instant, Backoff)>,
    /// A SUBSCRIBED not yet handed to the caller, and whether the tasks known are still to
    /// be reconciled: kept here, not in [`Session::connect`]'s future, so that a
    /// `next_event` dropped mid-subscription (a `select!` with a busier branch) loses
    /// neither.
    pending: Option<(Event, bool)>,
    /// A SUBSCRIBE under way, with its own copy of the client (in a mutex only so that the
    /// session stays `Sync`; reached through `&mut self`, never locked).
    attempt: Option<std::sync::Mutex<Subscribing>>,
    /// The backoff between SUBSCRIBE attempts of the current loss, and when the next may go.
    backoff: Option<Backoff>,
    retry_at: Option<Instant>,
}

/// A SUBSCRIBE attempt: the client it used (redirects change its master) and the outcome.
type Subscribing =
    std::pin::Pin<Box<dyn Future<Output = (SchedulerClient, Result<Subscription, SchedulerError>)> + Send>>;

impl Session {
    /// A session; nothing is sent until the first [`Events::next_event`].
    pub fn new(config: SessionConfig) -> Result<Self, SchedulerError> {
        let client = SchedulerClient::new(&config.master)?
            .with_credential(config.credential.clone())
            .with_content_type(config.content_type);
        Ok(Self {
            client,
            config,
            subscription: None,
            tasks: BTreeMap::new(),
            lost_since: None,
            subscribed_before: false,
            reconnections: 0,
            last_loss: None,
            torn_down: false,
            suppressed: BTreeSet::new(),
            unanswered: BTreeSet::new(),
            reconcile_again: None,
            pending: None,
            attempt: None,
            backoff: None,
            retry_at: None,
        })
    }

    /// The framework id, once subscribed.
    pub fn framework_id(&self) -> Option<&FrameworkId> {
        self.config.framework.id.as_ref()
    }

    /// The master in use (the leader, after redirects).
    pub fn master(&self) -> &str {
        self.client.master()
    }

    /// Whether a subscription is open.
    pub fn is_subscribed(&self) -> bool {
        self.subscription.is_some()
    }

    /// How many times the session re-subscribed after losing a subscription.
    pub fn reconnections(&self) -> u32 {
        self.reconnections
    }

    /// Why the last subscription was lost.
    pub fn last_loss(&self) -> Option<&str> {
        self.last_loss.as_deref()
    }

    /// The non-terminal tasks the session knows, with their agents when known: what it
    /// reconciles after re-subscribing.
    pub fn known_tasks(&self) -> impl Iterator<Item = (&str, Option<&AgentId>)> {
        self.tasks.iter().map(|(id, agent)| (id.as_str(), agent.as_ref()))
    }

    /// Forgets the framework id, so that the next subscription registers a new framework:
    /// what to do after [`SchedulerError::framework_removed`], as the old id can never
    /// come back.
    pub fn forget_framework_id(&mut self) {
        self.config.framework.id = None;
        // An attempt under way would present the old id.
        self.attempt = None;
        self.tasks.clear();
        self.unanswered.clear();
        self.reconcile_again = None;
    }

    /// Drops the subscription; the next [`Events::next_event`] re-subscribes.
    pub fn disconnect(&mut self, why: impl Into<String>) {
        if self.subscription.take().is_some() || self.lost_since.is_none() {
            self.lost_since = Some(Instant::now());
        }
        self.pending = None;
        self.last_loss = Some(why.into());
    }

    /// SUBSCRIBE until it works, a refusal, or the time is up; then reconcile.
    /// Cancel-safe: the attempt under way and the backoff are kept in the session, so a
    /// dropped call neither abandons a SUBSCRIBE the master may already have taken (which
    /// would register a framework nobody listens to) nor retries before the backoff ends.
    async fn connect(&mut self) -> Result<Event, SchedulerError> {
        let since = *self.lost_since.get_or_insert_with(Instant::now);
        let limit = self.config.give_up_after(self.subscribed_before);
        loop {
            if let Some(at) = self.retry_at {
                tokio::time::sleep_until(at.into()).await;
                self.retry_at = None;
            }
            let attempt = match self.attempt.as_mut() {
                Some(a) => a,
                None => {
                    let mut client = self.client.clone();
                    let framework = self.config.framework.clone();
                    let suppressed = self.suppressed.iter().cloned().collect();
                    self.attempt.insert(std::sync::Mutex::new(Box::pin(async move {
                        let result = client.subscribe_suppressed(framework, suppressed).await;
                        (client, result)
                    })))
                }
            };
            let (client, result) = attempt.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).await;
            self.attempt = None;
            // The attempt's client knows the leader it was redirected to and the new stream.
            self.client = client;
            let failure = match result {
                Ok(mut subscription) => {
                    subscription.set_missed_heartbeats(self.config.missed_heartbeats);
                    self.config.framework.id = Some(subscription.framework_id().clone());
                    let subscribed = Event {
                        r#type: Some(event::Type::Subscribed as i32),
                        subscribed: Some(subscription.subscribed.clone()),
                        ..Default::default()
                    };
                    self.subscription = Some(subscription);
                    self.lost_since = None;
                    self.backoff = None;
                    if std::mem::replace(&mut self.subscribed_before, true) {
                        self.reconnections += 1;
                    }
                    self.pending = Some((subscribed, true));
                    match self.hand_over_subscribed().await {
                        Ok(e) => return Ok(e),
                        Err(e) if e.loses_subscription() => {
                            self.pending = None;
                            self.subscription = None;
                            self.lost_since = Some(since);
                            e
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => e,
            };
            self.last_loss = Some(failure.to_string());
            let left = limit.saturating_sub(since.elapsed());
            if !failure.is_transient() {
                self.backoff = None;
                return Err(failure);
            }
            if left.is_zero() {
                self.backoff = None;
                return Err(SchedulerError::GaveUp { within: limit, last: Box::new(failure) });
            }
            let (first, max) = (self.config.first_backoff, self.config.max_backoff);
            let wait = self.backoff.get_or_insert_with(|| Backoff::new(first, max)).next_wait().min(left);
            self.retry_at = Some(Instant::now() + wait);
        }
    }

    /// Reconciles the known tasks if that is still to do, then gives out the pending
    /// SUBSCRIBED.
    async fn hand_over_subscribed(&mut self) -> Result<Event, SchedulerError> {
        if let Some((_, reconcile @ true)) = self.pending.as_mut() {
            *reconcile = false;
            if let Err(e) = self.reconcile_known().await {
                if let Some((_, reconcile)) = self.pending.as_mut() {
                    *reconcile = true;
                }
                return Err(e);
            }
        }
        Ok(self.pending.take().map(|(e, _)| e).unwrap_or_default())
    }

    /// Explicit reconciliation of every non-terminal task known; the tasks not heard of
    /// are asked about again, with truncated exponential backoff, until each has had an
    /// update (shared/docs/MESOS-HTTP-API.md §6.3).
    async fn reconcile_known(&mut self) -> Result<(), SchedulerError> {
        self.unanswered = self.tasks.keys().cloned().collect();
        self.reconcile_again = None;
        if self.unanswered.is_empty() {
            return Ok(());
        }
        let backoff = Backoff::new(self.config.first_backoff, self.config.max_backoff);
        self.reconcile_unanswered(backoff).await
    }

    /// RECONCILE the unanswered tasks, and schedule the next round.
    async fn reconcile_unanswered(&mut self, mut backoff: Backoff) -> Result<(), SchedulerError> {
        let tasks = self
            .unanswered
            .iter()
            .map(|id| (TaskId { value: id.clone() }, self.tasks.get(id).cloned().flatten()))
            .collect();
        self.reconcile_again = Some((Instant::now() + backoff.next_wait(), backoff));
        self.client.reconcile(tasks).await
    }

    /// The framework's roles: `roles` (MULTI_ROLE), else its one `role` (default `*`).
    #[allow(deprecated)] // `role` is how a framework without MULTI_ROLE names its role
    fn roles(&self) -> Vec<String> {
        let f = &self.config.framework;
        if f.roles.is_empty() { vec![f.role.clone().unwrap_or_else(|| "*".into())] } else { f.roles.clone() }
    }

    /// Keeps the suppressed roles after a successful SUPPRESS or REVIVE (no roles: all).
    fn track_suppression(&mut self, suppress: Option<Vec<String>>, revive: Option<Vec<String>>) {
        if let Some(roles) = suppress {
            self.suppressed.extend(if roles.is_empty() { self.roles() } else { roles });
        }
        if let Some(roles) = revive {
            if roles.is_empty() {
                self.suppressed.clear();
            } else {
                for r in &roles {
                    self.suppressed.remove(r);
                }
            }
        }
    }

    /// Keeps the task books from an event.
    fn observe(&mut self, e: &Event) {
        if let Some(update) = &e.update {
            let s = &update.status;
            self.unanswered.remove(&s.task_id.value);
            if self.unanswered.is_empty() {
                self.reconcile_again = None;
            }
            if is_terminal(s.state) {
                self.tasks.remove(&s.task_id.value);
            } else {
                let known = self.tasks.entry(s.task_id.value.clone()).or_default();
                if s.agent_id.is_some() {
                    known.clone_from(&s.agent_id);
                }
            }
        }
    }
}

/// Whether a task in `state` is over for good (Mesos' `protobuf::isTerminalState`), or
/// unknown to the master (nothing left to reconcile).
pub fn is_terminal(state: i32) -> bool {
    use TaskState::*;
    TaskState::try_from(state).is_ok_and(|s| {
        matches!(
            s,
            TaskFinished
                | TaskFailed
                | TaskKilled
                | TaskError
                | TaskLost
                | TaskDropped
                | TaskGone
                | TaskGoneByOperator
                | TaskUnknown
        )
    })
}

impl Events for Session {
    async fn next_event(&mut self) -> Option<Result<Event, SchedulerError>> {
        loop {
            if self.pending.is_some() && self.subscription.is_some() {
                match self.hand_over_subscribed().await {
                    Ok(e) => return Some(Ok(e)),
                    Err(e) if e.loses_subscription() => {
                        self.disconnect(e.to_string());
                        continue;
                    }
                    Err(e) => return Some(Err(e)),
                }
            }
            let Some(subscription) = self.subscription.as_mut() else {
                if self.torn_down {
                    return None;
                }
                return Some(self.connect().await);
            };
            let next = match self.reconcile_again.as_ref().map(|(at, _)| *at) {
                None => subscription.next_event().await,
                Some(at) => match tokio::time::timeout_at(at.into(), subscription.next_event()).await {
                    Ok(next) => next,
                    Err(_) => {
                        // Some tasks had no answer: ask about them again.
                        if let Some((_, backoff)) = self.reconcile_again.take() {
                            if let Err(e) = self.reconcile_unanswered(backoff).await {
                                if e.loses_subscription() {
                                    self.disconnect(e.to_string());
                                } else {
                                    return Some(Err(e));
                                }
                            }
                        }
                        continue;
                    }
                },
            };
            match next {
                Some(Ok(e)) => {
                    self.observe(&e);
                    return Some(Ok(e));
                }
                Some(Err(e @ SchedulerError::MasterError(_))) => {
                    self.disconnect(e.to_string());
                    return Some(Err(e));
                }
                Some(Err(e)) => self.disconnect(e.to_string()),
                None if self.torn_down => {
                    self.subscription = None;
                    return None;
                }
                None => self.disconnect("the master closed the event stream"),
            }
        }
    }
}

impl Calls for Session {
    async fn call(&mut self, name: &'static str, call: Call) -> Result<(), SchedulerError> {
        if self.subscription.is_none() {
            return Err(SchedulerError::NotSubscribed(name));
        }
        let launched: Vec<(String, AgentId)> = call
            .accept
            .iter()
            .flat_map(|a| &a.operations)
            .filter_map(|op| op.launch.as_ref())
            .flat_map(|l| &l.task_infos)
            .map(|t| (t.task_id.value.clone(), t.agent_id.clone()))
            .collect();
        let teardown = call.r#type == Some(call::Type::Teardown as i32);
        let suppress = call.suppress.as_ref().map(|s| s.roles.clone());
        let revive = call.revive.as_ref().map(|r| r.roles.clone());
        match self.client.send(name, call).await {
            Ok(()) => {
                for (task, agent) in launched {
                    self.tasks.insert(task, Some(agent));
                }
                self.torn_down |= teardown;
                self.track_suppression(suppress, revive);
                Ok(())
            }
            Err(e) => {
                if e.loses_subscription() {
                    self.disconnect(e.to_string());
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failover_timeout_bounds_retries_only_for_a_framework_that_exists() {
        let info = FrameworkInfo { failover_timeout: Some(7.0 * 86_400.0), ..Default::default() };
        let mut config = SessionConfig::new("m:5050", info);
        assert_eq!(config.give_up_after(false), Duration::from_secs(60));
        assert_eq!(config.give_up_after(true), Duration::from_secs(7 * 86_400));
        config.framework.failover_timeout = Some(0.0);
        assert_eq!(config.give_up_after(true), Duration::from_secs(60));
        config.give_up_after = Some(Duration::from_secs(5));
        assert_eq!(config.give_up_after(false), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn calls_before_a_subscription_are_refused_without_a_network() {
        let mut session = Session::new(SessionConfig::new("127.0.0.1:1", FrameworkInfo::default())).unwrap();
        assert!(matches!(session.revive().await, Err(SchedulerError::NotSubscribed("REVIVE"))));
        assert!(!session.is_subscribed() && session.framework_id().is_none());
    }
}
