package xyz.sigilvault.sunstorm.check

import java.nio.file.Files
import kotlin.test.assertEquals
import kotlin.test.assertIs
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.CsvSource
import xyz.sigilvault.sunstorm.BleCentral
import xyz.sigilvault.sunstorm.BleEvents
import xyz.sigilvault.sunstorm.BleException
import xyz.sigilvault.sunstorm.BlePeripheral
import xyz.sigilvault.sunstorm.CoreConfig
import xyz.sigilvault.sunstorm.SecretStore
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.UserPresence
import xyz.sigilvault.sunstorm.android.http.PlatformHttpClient
import xyz.sigilvault.sunstorm.android.link.LinkRoute
import xyz.sigilvault.sunstorm.android.link.PairLinkRouter
import xyz.sigilvault.sunstorm.sample.state.Destination
import xyz.sigilvault.sunstorm.sample.state.destinationFor

/**
 * App Link / QR routing as the sample's activity does it: `PairLinkRouter` over the real
 * core's `parseLink` (the host libsunstorm_ffi through JNA and the Android-flavour
 * bindings). Accepted `https://sigilvault.xyz/pair` links open the pair screen with the
 * code prefilled; everything else is refused with the core's reason.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LinkRoutingTest {
    private lateinit var core: SunstormCore
    private lateinit var router: PairLinkRouter

    private object NoBle : BleCentral {
        override fun scan(serviceUuid: String, timeoutMs: Int): List<BlePeripheral> = throw BleException.Unavailable("no radio in tests")
        override fun connect(peripheralId: String, events: BleEvents, timeoutMs: Int): Long = throw BleException.Unavailable("no radio in tests")
        override fun requestMtu(connectionId: Long, preferredMtu: Int): Int = throw BleException.Disconnected()
        override fun write(connectionId: Long, value: ByteArray) = throw BleException.Disconnected()
        override fun disconnect(connectionId: Long) = Unit
    }

    private object NoSecrets : SecretStore {
        override fun get(name: String): ByteArray? = null
        override fun put(name: String, value: ByteArray) = Unit
        override fun delete(name: String) = Unit
    }

    private object Absent : UserPresence {
        override fun verify(reason: String): Boolean = false
    }

    @BeforeAll
    fun startCore() {
        val dir = Files.createTempDirectory("sunstorm-android-check")
        core = SunstormCore(
            CoreConfig(
                octaneUrl = "http://127.0.0.1:9",
                octanePublicKeyHex = "11".repeat(32),
                acceptedLinkHosts = listOf("sigilvault.xyz"),
                databasePath = dir.resolve("sunstorm.db").toString(),
                phoneName = "jvm-check",
            ),
            NoBle, PlatformHttpClient(), NoSecrets, Absent,
        )
        router = PairLinkRouter(core::parseLink)
    }

    @AfterAll
    fun stopCore() = core.close()

    @Test
    fun `single-device App Link opens the pair screen with the code prefilled`() {
        val link = "https://sigilvault.xyz/pair?session=$SID&v=123456"
        val route = router.routeIntent(PairLinkRouter.ACTION_VIEW, link)
        assertEquals(LinkRoute.Pair(SID, "123456"), route)
        assertEquals(Destination.Pair(link, SID), destinationFor(route, link))
    }

    @Test
    fun `two-device QR code opens the pair screen without a code`() {
        assertEquals(LinkRoute.Pair(SID, null), router.routeScan("https://sigilvault.xyz/pair?session=$SID"))
        // Scanners often append a newline: the QR text is trimmed, the App Link never is.
        assertEquals(LinkRoute.Pair(SID, null), router.routeScan("https://sigilvault.xyz/pair?session=$SID\n"))
    }

    @Test
    fun `a launch without a link stays home`() {
        assertEquals(LinkRoute.NoLink, router.routeIntent("android.intent.action.MAIN", null))
        assertEquals(LinkRoute.NoLink, router.routeIntent(PairLinkRouter.ACTION_VIEW, null))
        assertEquals(LinkRoute.NoLink, router.routeIntent("android.intent.action.SEND", "https://sigilvault.xyz/pair?session=$SID"))
        assertEquals(null, destinationFor(LinkRoute.NoLink, null))
    }

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(
        "http://sigilvault.xyz/pair?session=SID,             not_https",
        "sigil://pair?session=SID,                           unsupported_scheme",
        "https://evil.example/pair?session=SID,              wrong_host",
        "https://sigilvault.xyz.evil.example/pair?session=SID, wrong_host",
        "https://sigilvault.xyz@evil.example/pair?session=SID, userinfo",
        "https://sigilvault.xyz:8443/pair?session=SID,       port",
        "https://sigilvault.xyz/login?session=SID,           wrong_path",
        "https://sigilvault.xyz/pair,                        missing_session",
        "https://sigilvault.xyz/pair?session=short,          bad_session_id",
        "https://sigilvault.xyz/pair?session=SID&v=12345,    bad_code",
        "https://sigilvault.xyz/pair?session=SID&v=1&v=2,    duplicate_parameter",
        "https://sigilvault.xyz/pair?session=SID&next=x,     unknown_parameter",
        "https://sigilvault.xyz/pair?session=SID#frag,       fragment",
    )
    fun `anything else is refused with the core's reason`(link: String, code: String) {
        val text = link.replace("SID", SID)
        val route = router.routeIntent(PairLinkRouter.ACTION_VIEW, text)
        val refused = assertIs<LinkRoute.Refused>(route, "accepted: $text")
        assertEquals(code, refused.code, refused.reason)
        assertIs<Destination.LinkRefused>(destinationFor(route, text))
        assertIs<LinkRoute.Refused>(router.routeScan(text))
    }

    @Test
    fun `oversized and empty texts are refused before reaching the core`() {
        val long = "https://sigilvault.xyz/pair?session=$SID&v=123456" + "a".repeat(PairLinkRouter.MAX_LINK_CHARS)
        assertEquals("too_long", assertIs<LinkRoute.Refused>(router.routeIntent(PairLinkRouter.ACTION_VIEW, long)).code)
        assertEquals("empty", assertIs<LinkRoute.Refused>(router.routeScan("   ")).code)
    }

    private companion object {
        const val SID = "ps_4kT9xQ2mV7nB1cR8sL0wYz"
    }
}
