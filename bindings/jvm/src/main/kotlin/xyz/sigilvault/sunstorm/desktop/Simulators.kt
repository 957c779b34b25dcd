package xyz.sigilvault.sunstorm.desktop

import java.nio.file.Files
import java.nio.file.Path
import xyz.sigilvault.sunstorm.CoreConfig

/**
 * The rest of the Sigil system on a desktop, as child processes of the `sunstorm` CLI:
 * `sunstorm sim octane` (the server, with a demo service registered) and one
 * `sunstorm sim appliance` on a Unix socket, started with everything a working setup
 * needs (octane's key pinned in the appliance, a fixed PIN). The service's side is
 * `sunstorm sp …` ([createSession], [requestSignature]).
 *
 * ```kotlin
 * Simulators.start().use { sims ->
 *     SunstormCore(sims.coreConfig(dir.resolve("sunstorm.db")), sims.bleCentral(), JdkHttpClient(),
 *                  FileSecretStore(dir.resolve("secrets")), ConsoleUserPresence(autoApprove = true))
 * }
 * ```
 * The same commands by hand: docs/embedding.md, "Simulators".
 */
class Simulators private constructor(
    /** Where the appliance's socket lives. */
    val dir: Path,
    private val sunstorm: Path,
    private val octane: SimProcess,
    facts: String,
    /** The appliance's bonding PIN (what its screen would show). */
    val pin: String,
) : AutoCloseable {
    /** Octane's URL (`http://127.0.0.1:PORT`, accepted by the core on loopback only). */
    val octaneUrl: String = jsonField(facts, "url")

    /** Octane's Ed25519 public key, to pin in [CoreConfig.octanePublicKeyHex]. */
    val octanePublicKeyHex: String = jsonField(facts, "octane_public_key")

    /** The demo service's API key at octane (simulator only). */
    val spApiKey: String = jsonField(facts, "api_key")

    /** The demo service's Ed25519 signing seed (simulator only). */
    val spKeySeedHex: String = jsonField(facts, "sp_key_seed")

    /** The appliance's peripheral id in [bleCentral] (what a scan lists). */
    val applianceId: String = "sim-1"

    /** The appliance simulator's socket. */
    val applianceSocket: Path = dir.resolve("appliance.sock")

    /**
     * The further demo services octane registered (`--extra-sps`), each as (API key,
     * signing seed hex); index 1 is the first of them, index 0 the demo service.
     */
    private val services: List<Pair<String, String>> =
        listOf(spApiKey to spKeySeedHex) + extraServices(facts)

    private val extra = mutableListOf<AutoCloseable>()
    private lateinit var appliance: SimProcess
    private val moreAppliances = java.util.concurrent.ConcurrentHashMap<String, Pair<Path, SimProcess>>()
    private var applianceControl: ApplianceControl? = null

    /**
     * The appliance's control API (screen, buttons, rules, faults, bonding, state), when
     * started with `control = true`.
     */
    fun control(): ApplianceControl =
        checkNotNull(applianceControl) { "start the simulators with control = true to use the appliance's control API" }

    /**
     * A [UdsBleCentral] that reaches the appliance simulator as peripheral [applianceId]
     * (and those started with [startAppliance] under their ids).
     */
    fun bleCentral(): UdsBleCentral =
        UdsBleCentral(mapOf(applianceId to applianceSocket) + moreAppliances.mapValues { it.value.first })

    /**
     * Starts another appliance simulator (its own keys from [seedHex], 64 hex digits, and
     * wallets), pinned to the same octane, reachable as peripheral [peripheralId] through
     * the [bleCentral]s made afterwards. Stopped by [close].
     */
    fun startAppliance(peripheralId: String, seedHex: String, pin: String = this.pin): Path {
        require(peripheralId != applianceId && !moreAppliances.containsKey(peripheralId)) { "$peripheralId is taken" }
        val socket = dir.resolve("appliance-$peripheralId.sock")
        val p = SimProcess(
            listOf(
                "sim", "appliance", "--socket", socket.toString(), "--pin", pin,
                "--octane-key", octanePublicKeyHex, "--seed", seedHex, "--name", "Sigil $peripheralId",
            ),
            sunstorm,
        )
        try {
            p.awaitLine("PIN:")
        } catch (e: Throwable) {
            p.close()
            throw e
        }
        moreAppliances[peripheralId] = socket to p
        return socket
    }

    /** A [CoreConfig] for these simulators (octane's URL and pinned key, the link host). */
    fun coreConfig(databasePath: Path, phoneName: String = "Desktop"): CoreConfig = CoreConfig(
        octaneUrl = octaneUrl,
        octanePublicKeyHex = octanePublicKeyHex,
        acceptedLinkHosts = listOf(LINK_HOST),
        databasePath = databasePath.toString(),
        phoneName = phoneName,
    )

    /** Runs `sunstorm sp ARGS --octane URL --api-key KEY --json` as the demo service. */
    fun sp(vararg args: String): SimProcess = spAs(0, *args)

    /** [sp] as demo service [service] (0: the demo service; 1…: those of `extraSps`). */
    fun spAs(service: Int, vararg args: String): SimProcess {
        val (apiKey, _) = services.getOrNull(service) ?: error("no service $service (start with extraSps)")
        return SimProcess(listOf("sp") + args.toList() + listOf("--octane", octaneUrl, "--api-key", apiKey, "--json"), sunstorm)
            .also { synchronized(extra) { extra += it } }
    }

    /**
     * The service opens a pair session (`sunstorm sp create-session`): the link and the code
     * it shows. [service] picks the demo service (0) or one of `extraSps` (1…).
     */
    fun createSession(
        chains: List<String> = listOf("eip155:1"),
        userRef: String = "alice@example",
        service: Int = 0,
    ): PairSession {
        val p = spAs(service, "create-session", "--chains", chains.joinToString(","), "--user-ref", userRef)
        val line = p.awaitLine("{")
        check(p.awaitExit() == 0) { "sunstorm sp create-session failed: ${p.drain()}" }
        return PairSession(
            link = jsonField(line, "link"),
            code = jsonField(line, "validation_code"),
            sessionId = jsonField(line, "session_id"),
            linkWithCode = jsonField(line, "link_with_code"),
        )
    }

    /**
     * The service asks [account] of [pairId] to sign one of `sunstorm sp sign --sample`'s
     * payloads (`eip1559`, `erc20`, `eip712`, `solana`) and waits in the background.
     */
    fun requestSignature(pairId: String, account: String, sample: String = "eip1559", timeoutSecs: Int = 120): PendingSignature =
        requestSignature(pairId, account, listOf("--sample", sample), timeoutSecs)

    /**
     * The same with explicit payload flags (`--evm-tx HEX`, `--message TEXT`, …), as demo
     * service [service] (0: the demo service; 1…: those of `extraSps`).
     */
    fun requestSignature(
        pairId: String,
        account: String,
        payloadArgs: List<String>,
        timeoutSecs: Int = 120,
        service: Int = 0,
    ): PendingSignature {
        val (_, seed) = services.getOrNull(service) ?: error("no service $service (start with extraSps)")
        val args = listOf("sign", "--sp-key", seed, "--pair", pairId, "--account", account) +
            payloadArgs + listOf("--octane-key", octanePublicKeyHex, "--timeout", timeoutSecs.toString())
        return PendingSignature(spAs(service, *args.toTypedArray()))
    }

    /** Stops the service processes, the appliance and octane. */
    override fun close() {
        synchronized(extra) { extra.reversed().forEach { runCatching { it.close() } } }
        moreAppliances.values.forEach { runCatching { it.second.close() } }
        if (this::appliance.isInitialized) runCatching { appliance.close() }
        runCatching { octane.close() }
    }

    companion object {
        /** The PIN the appliance simulator is started with. */
        const val DEFAULT_PIN = "246810"

        /** The host of the pair links octane hands out. */
        const val LINK_HOST = "sigilvault.xyz"

        /**
         * Starts octane (on a free loopback port) and an appliance pinned to octane's key,
         * waiting until both are ready. [applianceArgs] adds flags of `sunstorm sim
         * appliance` (`--delay-ms 30000`, `--mtu 64`, `--user api`…). With [control] the
         * appliance also serves its control API on a free loopback port ([control]). With
         * [extraSps] octane registers that many further demo services (`--extra-sps`).
         * [octaneArgs] adds flags of `sunstorm sim octane` (`--metadata-bundle FILE`…).
         */
        fun start(
            dir: Path = Files.createTempDirectory("sunstorm-sims"),
            pin: String = DEFAULT_PIN,
            applianceArgs: List<String> = emptyList(),
            sunstorm: Path = SunstormCli.find(),
            control: Boolean = false,
            extraSps: Int = 0,
            octaneArgs: List<String> = emptyList(),
        ): Simulators {
            val octane = SimProcess(
                listOf("sim", "octane", "--listen", "127.0.0.1:0", "--json", "--extra-sps", extraSps.toString()) + octaneArgs,
                sunstorm,
            )
            val sims = try {
                Simulators(dir, sunstorm, octane, octane.awaitLine("{"), pin)
            } catch (e: Throwable) {
                octane.close()
                throw e
            }
            try {
                sims.appliance = SimProcess(
                    listOf(
                        "sim", "appliance", "--socket", sims.applianceSocket.toString(),
                        "--pin", pin, "--octane-key", sims.octanePublicKeyHex,
                    ) + (if (control) listOf("--control", "127.0.0.1:0") else emptyList()) + applianceArgs,
                    sunstorm,
                )
                if (control) {
                    val line = sims.appliance.awaitLine("control API: ")
                    sims.applianceControl = ApplianceControl(line.removePrefix("control API: ").trim())
                }
                sims.appliance.awaitLine("PIN:")
            } catch (e: Throwable) {
                sims.close()
                throw e
            }
            return sims
        }
    }
}

/** A pair session the service opened: the [link] (and QR) and the [code] its page shows. */
data class PairSession(val link: String, val code: String, val sessionId: String, val linkWithCode: String)

/** A `sunstorm sp sign` waiting for the phone and the appliance. */
class PendingSignature internal constructor(private val process: SimProcess) : AutoCloseable {
    /**
     * Waits for the service's result: `signed` (with the three signatures, each verified by
     * the CLI) or why not.
     */
    fun await(timeoutMs: Long = 120_000): SignatureResult {
        val code = process.awaitExit(timeoutMs)
        val lines = process.drain()
        val json = lines.lastOrNull { it.startsWith("{") }
        return SignatureResult(
            exitCode = code,
            status = json?.let { jsonFieldOrNull(it, "status") },
            requestId = json?.let { jsonFieldOrNull(it, "request_id") },
            json = json,
            output = lines,
        )
    }

    override fun close() = process.close()
}

/** What the service got back: [status] `signed` on success (exit code 0). */
data class SignatureResult(
    val exitCode: Int,
    val status: String?,
    val requestId: String?,
    /** The CLI's JSON document (signatures, keys), or null. */
    val json: String?,
    /** Everything the CLI printed. */
    val output: List<String>,
)

private fun jsonFieldOrNull(json: String, name: String): String? =
    Regex("\"${Regex.escape(name)}\":\"([^\"]*)\"").find(json)?.groupValues?.get(1)

private fun jsonField(json: String, name: String): String =
    requireNotNull(jsonFieldOrNull(json, name)) { "no \"$name\" in $json" }

/** The (API key, signing seed) of each service under `"extra_sps"` in octane's facts. */
private fun extraServices(facts: String): List<Pair<String, String>> {
    val at = facts.indexOf("\"extra_sps\"")
    if (at < 0) return emptyList()
    val tail = facts.substring(at)
    val keys = Regex("\"api_key\":\"([^\"]*)\"").findAll(tail).map { it.groupValues[1] }.toList()
    val seeds = Regex("\"sp_key_seed\":\"([^\"]*)\"").findAll(tail).map { it.groupValues[1] }.toList()
    return keys.zip(seeds)
}
