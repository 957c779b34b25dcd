package xyz.sigilvault.sunstorm.test

import java.net.URI
import java.net.http.HttpClient as JdkClient
import java.net.http.HttpRequest as JdkRequest
import java.net.http.HttpResponse as JdkResponse
import java.util.Base64
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import xyz.sigilvault.sunstorm.ChainLimitSetting
import xyz.sigilvault.sunstorm.NotificationExtension
import xyz.sigilvault.sunstorm.NotificationExtensionConfig
import xyz.sigilvault.sunstorm.NotificationOutcomeView
import xyz.sigilvault.sunstorm.PairStateView
import xyz.sigilvault.sunstorm.PushPlatform
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.desktop.SimProcess
import xyz.sigilvault.sunstorm.desktop.Simulators

/** The push gateway simulator (`sunstorm sim push-gateway`) as a child process. */
private class PushGateway : AutoCloseable {
    private val process = SimProcess(listOf("sim", "push-gateway", "--listen", "127.0.0.1:0", "--json"))
    val url: String = requireNotNull(Regex("\"url\":\"([^\"]*)\"").find(process.awaitLine("{"))) { "no url" }.groupValues[1]
    private val http = JdkClient.newHttpClient()

    /** The sealed payloads (`sigil`) of every accepted FCM delivery to [token], oldest first. */
    fun delivered(token: String): List<ByteArray> {
        val body = http.send(
            JdkRequest.newBuilder(URI.create("$url/sim/deliveries")).GET().build(),
            JdkResponse.BodyHandlers.ofString(),
        ).body()
        // One object per delivery; each names its token, status and sealed text.
        return Regex("\\{\"seq\".*?\"status\":\\d+").findAll(body)
            .map { it.value }
            .filter { "\"token\":\"$token\"" in it && it.endsWith("\"status\":200") }
            .mapNotNull { Regex("\"sealed\":\"([^\"]+)\"").find(it)?.groupValues?.get(1) }
            .map { Base64.getDecoder().decode(it) }
            .toList()
    }

    /** Waits for the [n]th delivery to [token]. */
    fun awaitDelivery(token: String, n: Int, timeoutMs: Long = 60_000): ByteArray {
        val until = System.currentTimeMillis() + timeoutMs
        while (System.currentTimeMillis() < until) {
            delivered(token).getOrNull(n - 1)?.let { return it }
            Thread.sleep(100)
        }
        error("no delivery #$n to $token within $timeoutMs ms: ${delivered(token).size} so far")
    }

    override fun close() = process.close()
}

/**
 * Push from Kotlin, end to end: the service signs → octane → the push gateway simulator
 * (FCM's shape) → a Kotlin "notification extension" opens its own read-only view of the
 * app's database and secrets and asks the core what to show → the notification names the
 * service, the action and the amount → the app turns the same push into the review screen
 * without fetching it → the user approves → the service gets its three signatures. Pushes
 * that are tampered with, replayed, or that the guardrails block show nothing, with their
 * reason.
 */
class PushTest : ClosingTest() {
    @Test
    fun `a push is verified and worded before it shows, and approving it signs`() = runBlocking<Unit> {
        val gateway = PushGateway().also { closeables += it }
        val sims = Simulators.start(dir, octaneArgs = listOf("--push-gateway", gateway.url)).also { closeables += it }
        val secrets = MemorySecretStore() // the keychain access group the app and its extension share
        val config = testConfig(dir, sims.octaneUrl, sims.octanePublicKeyHex)
        val core = SunstormCore(config, sims.bleCentral(), RecordingHttpClient(), secrets, ScriptedPresence())
            .also { closeables += it }

        core.bondAppliance(sims.applianceId, sims.pin)
        val session = sims.createSession(listOf("eip155:1"))
        val opened = core.openPairLink(session.link) as PairStateView.CodeNeeded
        core.submitCode(opened.flowId, session.code)
        val account = core.applianceWallets(listOf("eip155:1")).first().account
        core.chooseWallets(opened.flowId, listOf(account))
        val pairId = (core.approvePair(opened.flowId) as PairStateView.Paired).pairId

        // The app registers its FCM token; the push key stays in the shared secret store.
        val token = "fcm-token-kotlin-1"
        assertEquals(1u, core.registerPushTarget(PushPlatform.FCM, token))
        assertTrue(Regex("[0-9a-f]{64}").matches(core.pushPublicKeyHex()))

        // The extension process: its own object, the same database (read-only) and secrets.
        val ext = NotificationExtension.open(
            NotificationExtensionConfig(config.databasePath, sims.octanePublicKeyHex),
            secrets,
        ).also { closeables += it }

        // The service asks for 0.05 ETH; octane pushes it through the gateway.
        val sp = sims.requestSignature(pairId, account).also { closeables += it }
        val sealed = gateway.awaitDelivery(token, 1)
        val shown = ext.handlePush(sealed)
        assertTrue(shown is NotificationOutcomeView.Show, "$shown")
        assertEquals("${opened.card.spName} asks you to sign", shown.title)
        assertTrue(shown.body.contains("0.05 ETH"), shown.body)
        assertEquals("sign_request", shown.category)
        assertEquals(pairId, shown.pairId)

        // Bytes changed on the way: nothing shows.
        val tampered = sealed.copyOf().also { it[it.size - 1] = (it[it.size - 1].toInt() xor 1).toByte() }
        val refused = ext.handlePush(tampered)
        assertTrue(refused is NotificationOutcomeView.Suppress && refused.reason == "tampered", "$refused")

        // The user taps it: the app reviews the same request, fetched from nowhere.
        val req = core.receivePush(sealed)
        assertEquals(shown.requestId, req.requestId)
        assertTrue(req.fields.any { it.value.contains("0.05") }, "${req.fields}")
        core.approveSign(req.requestId)
        val result = sp.await()
        assertEquals("signed", result.status, "sp sign: ${result.output}")
        val out = requireNotNull(result.json) { "${result.output}" }
        for (sig in listOf("sp_sig", "octane_sig", "appliance_sig")) {
            assertTrue(Regex("\"$sig\":\"[^\"]+\"").containsMatchIn(out), "$sig missing: $out")
        }

        // The same push again (a replay, or the platform delivering twice): nothing shows.
        val replayed = ext.handlePush(sealed)
        assertTrue(replayed is NotificationOutcomeView.Suppress && replayed.reason == "replayed", "$replayed")

        // A request the guardrails would block never notifies: a daily limit of 0.01 ETH.
        core.setGuardrails(core.guardrails().copy(limits = listOf(ChainLimitSetting("eip155:1", perDay = "0.010"))))
        sims.requestSignature(pairId, account).also { closeables += it }
        val blocked = ext.handlePush(gateway.awaitDelivery(token, 2))
        assertTrue(blocked is NotificationOutcomeView.Suppress && blocked.reason == "blocked", "$blocked")
        assertTrue("per_day_limit_exceeded" in blocked.violations, "$blocked")

        // Push turned off: octane forgets the token, the app keeps polling.
        assertEquals(1u, core.removePushTarget())
    }
}
