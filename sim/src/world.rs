//! One simulated world, built in one place: an octane simulator on loopback HTTP, its demo
//! SP's client, an appliance simulator that pins that octane's key, and the simulated GATT
//! link the phone reaches it over. The end-to-end tests and `sunstorm demo` start it
//! ([`World::start`]), put their own phone (`Sunstorm`) in it ([`World::phone_config`]),
//! and add appliances ([`World::add_appliance`]) or SP clients ([`World::sp_client`]) as
//! their story needs.

use std::sync::Arc;

use sunstorm_core::sunstorm::SunstormConfig;
use tokio::task::JoinHandle;

use crate::appliance::{ApplianceSim, ApplianceSimConfig, SimError};
use crate::link::{SimConnector, SimLinkConfig};
use crate::octane::{DemoSp, OctaneSim, OctaneSimConfig, OctaneSimError, OctaneSimHandle};
use crate::sp::{SpClient, SpClientError};

/// How to build a [`World`].
#[derive(Debug, Clone, Default)]
pub struct WorldConfig {
    /// The octane simulator.
    pub octane: OctaneSimConfig,
    /// The appliance simulator (its `octane_key` is replaced by the started octane's key).
    pub appliance: ApplianceSimConfig,
    /// The radio link between the phone and the appliance.
    pub link: SimLinkConfig,
}

/// Why a [`World`] could not be started.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// The octane simulator did not start.
    #[error("octane simulator: {0}")]
    Octane(#[source] OctaneSimError),
    /// The SP's client of octane could not be made.
    #[error("SP client: {0}")]
    Sp(#[source] SpClientError),
    /// The appliance simulator's configuration was refused.
    #[error("appliance simulator: {0}")]
    Appliance(#[source] SimError),
    /// The octane simulator's URL did not parse.
    #[error("octane simulator URL: {0}")]
    Url(#[source] url::ParseError),
}

impl WorldError {
    /// A stable snake_case code (the CLI's error code).
    pub fn code(&self) -> &'static str {
        match self {
            WorldError::Octane(_) => "octane_sim",
            WorldError::Sp(_) => "sp_client",
            WorldError::Appliance(_) => "appliance_sim",
            WorldError::Url(_) => "octane_url",
        }
    }
}

/// An appliance simulator serving its own simulated link.
pub struct LinkedAppliance {
    /// The appliance simulator.
    pub appliance: ApplianceSim,
    /// The phone's connector to it.
    pub connector: Arc<SimConnector>,
    /// Its accept loop (runs until the runtime stops; dropping the handle does not stop it).
    pub serving: JoinHandle<()>,
}

/// A running octane, SP, appliance and link.
pub struct World {
    /// The octane simulator (its URL and pinned key).
    pub octane: OctaneSimHandle,
    /// Octane's base URL, parsed.
    pub octane_url: url::Url,
    /// The demo SP registered on it.
    pub demo: DemoSp,
    /// The demo SP's client of octane.
    pub sp: SpClient,
    /// The appliance simulator.
    pub appliance: ApplianceSim,
    /// The phone's connector to the appliance.
    pub connector: Arc<SimConnector>,
    /// The link's configuration (its `live` handle changes faults at run time).
    pub link: SimLinkConfig,
    /// The appliance's accept loop.
    pub serving: JoinHandle<()>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World").field("octane", &self.octane).finish_non_exhaustive()
    }
}

impl World {
    /// Starts octane, makes the demo SP's client, starts the appliance (pinning octane's
    /// key) and links it to a phone-side connector.
    pub async fn start(cfg: WorldConfig) -> Result<World, WorldError> {
        let octane = OctaneSim::start(cfg.octane).await.map_err(WorldError::Octane)?;
        let octane_url = url::Url::parse(&octane.url).map_err(WorldError::Url)?;
        let demo = octane.demo_sp.clone();
        let sp = SpClient::new(&octane.url, &demo.api_key).map_err(WorldError::Sp)?;
        let LinkedAppliance { appliance, connector, serving } =
            link_appliance(&octane, cfg.appliance, cfg.link.clone())?;
        Ok(World { octane, octane_url, demo, sp, appliance, connector, link: cfg.link, serving })
    }

    /// Another appliance in this world (pinning this octane's key) on its own link.
    pub fn add_appliance(&self, cfg: ApplianceSimConfig, link: SimLinkConfig) -> Result<LinkedAppliance, WorldError> {
        link_appliance(&self.octane, cfg, link)
    }

    /// A client of this octane's SP API as `sp` (the demo SP or one of
    /// [`OctaneSimHandle::extra_sps`]).
    pub fn sp_client(&self, sp: &DemoSp) -> Result<SpClient, WorldError> {
        SpClient::new(&self.octane.url, &sp.api_key).map_err(WorldError::Sp)
    }

    /// A phone configuration pointing at this world's octane (its URL and pinned key), with
    /// the core's defaults otherwise.
    pub fn phone_config(&self) -> SunstormConfig {
        SunstormConfig::new(self.octane_url.clone(), self.octane.octane_public_key)
    }
}

fn link_appliance(
    octane: &OctaneSimHandle,
    cfg: ApplianceSimConfig,
    link: SimLinkConfig,
) -> Result<LinkedAppliance, WorldError> {
    let appliance = ApplianceSim::new(ApplianceSimConfig { octane_key: octane.octane_public_key, ..cfg })
        .map_err(WorldError::Appliance)?;
    let (connector, acceptor) = SimConnector::new(link);
    let serving = appliance.spawn_acceptor(acceptor);
    Ok(LinkedAppliance { appliance, connector: Arc::new(connector), serving })
}
