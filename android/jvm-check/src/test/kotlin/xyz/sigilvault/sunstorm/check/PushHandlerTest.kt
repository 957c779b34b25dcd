package xyz.sigilvault.sunstorm.check

import java.nio.file.Files
import java.util.Base64
import java.util.concurrent.ConcurrentHashMap
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertTrue
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import xyz.sigilvault.sunstorm.BleCentral
import xyz.sigilvault.sunstorm.BleEvents
import xyz.sigilvault.sunstorm.BleException
import xyz.sigilvault.sunstorm.BlePeripheral
import xyz.sigilvault.sunstorm.CoreConfig
import xyz.sigilvault.sunstorm.NotificationExtension
import xyz.sigilvault.sunstorm.NotificationExtensionConfig
import xyz.sigilvault.sunstorm.NotificationOutcomeView
import xyz.sigilvault.sunstorm.SecretStore
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.SunstormException
import xyz.sigilvault.sunstorm.UserPresence
import xyz.sigilvault.sunstorm.android.http.PlatformHttpClient
import xyz.sigilvault.sunstorm.android.push.NotificationPoster
import xyz.sigilvault.sunstorm.android.push.PushHandling
import xyz.sigilvault.sunstorm.android.push.PushMessage
import xyz.sigilvault.sunstorm.android.push.SunstormPushHandler

/**
 * The Android messaging service's body (`SunstormPushHandler`) over the real core's
 * notification extension, opened read-only on the database the app created and the push
 * key in the secret store the app shares: pushes that are not octane's, that do not open,
 * or that arrive before push is set up post nothing; a rotated token goes to the app. (The
 * verified path from the SP to a posted text runs in the bindings' Kotlin `PushTest`.)
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PushHandlerTest {
    private val dir = Files.createTempDirectory("sunstorm-android-push")
    private val dbPath = dir.resolve("sunstorm.db").toString()
    private val octaneKey = "11".repeat(32)
    private lateinit var core: SunstormCore

    private class SharedSecrets : SecretStore {
        val items = ConcurrentHashMap<String, ByteArray>()
        override fun get(name: String): ByteArray? = items[name]
        override fun put(name: String, value: ByteArray) { items[name] = value }
        override fun delete(name: String) { items.remove(name) }
    }

    private val secrets = SharedSecrets()

    private object NoBle : BleCentral {
        override fun scan(serviceUuid: String, timeoutMs: Int): List<BlePeripheral> = throw BleException.Unavailable("no radio in tests")
        override fun connect(peripheralId: String, events: BleEvents, timeoutMs: Int): Long = throw BleException.Unavailable("no radio in tests")
        override fun requestMtu(connectionId: Long, preferredMtu: Int): Int = throw BleException.Disconnected()
        override fun write(connectionId: Long, value: ByteArray) = throw BleException.Disconnected()
        override fun disconnect(connectionId: Long) = Unit
    }

    private object Absent : UserPresence {
        override fun verify(reason: String): Boolean = false
    }

    private class Posted : NotificationPoster {
        val shown = mutableListOf<NotificationOutcomeView.Show>()
        override fun post(shown: NotificationOutcomeView.Show) { this.shown += shown }
    }

    private fun message(vararg data: Pair<String, String>) = object : PushMessage {
        override val data = mapOf(*data)
    }

    private fun handler(store: SecretStore, posted: Posted, tokens: MutableList<String> = mutableListOf()) =
        SunstormPushHandler(
            openExtension = { NotificationExtension.open(NotificationExtensionConfig(dbPath, octaneKey), store) },
            poster = posted,
            registerToken = { tokens += it },
        )

    @BeforeAll
    fun startApp() {
        // The app: creates the database and its push key (what it registers with octane).
        core = SunstormCore(
            CoreConfig("http://127.0.0.1:9", octaneKey, listOf("sigilvault.xyz"), dbPath, "jvm-check"),
            NoBle, PlatformHttpClient(), secrets, Absent,
        )
        assertTrue(Regex("[0-9a-f]{64}").matches(core.pushPublicKeyHex()))
    }

    @AfterAll
    fun stopApp() = core.close()

    @Test
    fun `pushes that are not octane's or do not open post nothing`() {
        val posted = Posted()
        val h = handler(secrets, posted)
        assertEquals(PushHandling.NotOurs, h.onMessageReceived(message("other" to "x")))
        val garbage = Base64.getEncoder().encodeToString(ByteArray(120) { it.toByte() })
        assertEquals(PushHandling.Suppressed("tampered", emptyList()), h.onMessageReceived(message("sigil" to garbage)))
        assertEquals(PushHandling.Suppressed("tampered", emptyList()), h.onMessageReceived(message("sigil" to "not base64!")))
        assertEquals(PushHandling.Suppressed("tampered", emptyList()), h.onMessageReceived(message("sigil" to "A".repeat(5000))))
        assertTrue(posted.shown.isEmpty(), "${posted.shown}")
    }

    @Test
    fun `before the app made a push key the handler says push is not set up`() {
        val posted = Posted()
        val h = handler(SharedSecrets(), posted)
        val r = h.onMessageReceived(message("sigil" to Base64.getEncoder().encodeToString(ByteArray(80))))
        assertIs<PushHandling.Unavailable>(r)
        assertIs<SunstormException.PushNotSetUp>(r.error)
        assertEquals("no_push_key", (r.error as SunstormException.PushNotSetUp).code)
        assertTrue(posted.shown.isEmpty())
    }

    @Test
    fun `a rotated token goes to the app to register again`() {
        val tokens = mutableListOf<String>()
        handler(secrets, Posted(), tokens).onNewToken("fcm-token-2")
        assertEquals(listOf("fcm-token-2"), tokens)
    }
}
