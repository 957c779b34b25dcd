package xyz.sigilvault.sunstorm.test

import java.nio.file.Files
import java.nio.file.Path
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Test
import xyz.sigilvault.sunstorm.AuditEventView
import xyz.sigilvault.sunstorm.MetadataOrigin
import xyz.sigilvault.sunstorm.MetadataUpdateView
import xyz.sigilvault.sunstorm.PairStateView
import xyz.sigilvault.sunstorm.SignRequestView
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.SunstormException
import xyz.sigilvault.sunstorm.desktop.Simulators

/** `erc20_transfer(1, 0, USDC, [0x22; 20], 1_500_000)` from `sunstorm_sim::samples`: 1.5 USDC to
 *  [RECIPIENT]. Checked against the generator by `bindings/tests/samples.rs`. */
const val USDC_TRANSFER_HEX =
    "02f86d018084773594008506fc23ac0082fde894a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4880b844a9059cbb0000000000000000000000002222222222222222222222222222222222222222000000000000000000000000000000000000000000000000000000000016e360c0"

/** `uniswap_exact_input_single(1, 1, WETH, USDC, 3000, [0x22; 20], ETHER, 3_000_000_000)`: swap
 *  1 WETH for at least 3,000 USDC through Uniswap's SwapRouter02, paid to [RECIPIENT]. Checked
 *  by `bindings/tests/samples.rs`. */
const val UNISWAP_SWAP_HEX =
    "02f9010e010184773594008506fc23ac0083030d409468b3465833fb72a70ecdf485e0e4c7bd8665fc4580b8e404e45aaf000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb480000000000000000000000000000000000000000000000000000000000000bb800000000000000000000000022222222222222222222222222222222222222220000000000000000000000000000000000000000000000000de0b6b3a764000000000000000000000000000000000000000000000000000000000000b2d05e000000000000000000000000000000000000000000000000000000000000000000c0"

const val RECIPIENT = "0x2222222222222222222222222222222222222222"

/** The repository's development metadata key (`metadata::DEV_METADATA_PUBLIC_KEY`), which
 *  signs `metadata/bundle.cbor`. */
const val DEV_METADATA_KEY = "ebfe4619b374c565c8629e2a7f1cb1018e8c11578855d65f0df09d0dfa4a88ec"

/**
 * Clear signing from Kotlin: the app ships the repository's signed metadata bundle
 * (`metadata/bundle.cbor`) and pins its key; the octane simulator serves the same bundle; the
 * service asks for a USDC transfer and a Uniswap swap through `sunstorm sp sign --evm-tx`,
 * and the review screens read as a person would want them, with the user's own label.
 */
class ClearSigningTest : ClosingTest() {
    /** `metadata/bundle.cbor`, from the working directory (the Maven module) upwards. */
    private fun repoBundle(): Path =
        generateSequence(Path.of("").toAbsolutePath()) { it.parent }
            .map { it.resolve("metadata").resolve("bundle.cbor") }
            .first { Files.isRegularFile(it) }

    private fun SignRequestView.value(key: String): String? = fields.firstOrNull { it.key == key }?.value

    /** Waits for the one request octane delivers next. */
    private suspend fun next(core: SunstormCore): SignRequestView = withTimeout(60_000) {
        var got = core.pendingSignRequests(2_000)
        while (got.isEmpty()) got = core.pendingSignRequests(2_000)
        got.single()
    }

    @Test
    fun `the shipped bundle shows 1,5 USDC, a Uniswap swap by its fields, and the user's label`() = runBlocking<Unit> {
        val bundle = repoBundle()
        val sims = Simulators.start(dir, octaneArgs = listOf("--metadata-bundle", bundle.toString()))
            .also { closeables += it }
        val http = RecordingHttpClient()
        val config = testConfig(dir, sims.octaneUrl, sims.octanePublicKeyHex)
            .copy(metadataPublicKeyHex = DEV_METADATA_KEY, metadataBundle = Files.readAllBytes(bundle))
        val core = SunstormCore(config, sims.bleCentral(), http, MemorySecretStore(), ScriptedPresence())
            .also { closeables += it }

        // The shipped bundle is in use; octane serves the same one, so the update downloads
        // nothing (a conditional request through the app's HttpClient).
        val status = requireNotNull(core.metadataStatus())
        assertEquals(MetadataOrigin.SHIPPED, status.origin)
        assertTrue(status.sources.any { it.name == "LedgerHQ/clear-signing-erc7730-registry" }, "${status.sources}")
        assertEquals(MetadataUpdateView.Unchanged(status.version), core.updateMetadata())
        assertTrue("GET /metadata/bundle" in http.seen, "${http.seen}")

        // The user names the recipient; a bad address is refused with what to fix.
        val label = core.setAddressLabel("eip155:1", RECIPIENT, "Alice")
        assertEquals("Ethereum" to "Alice", label.chainName to label.label)
        val refused = assertFailsWith<SunstormException.InvalidAddressLabel> { core.setAddressLabel("eip155:1", "0x1234", "Bob") }
        assertEquals("address_book_bad_address", refused.code)
        assertEquals(listOf(label), core.addressLabels())

        // Bond and pair for Ethereum.
        core.bondAppliance(sims.applianceId, sims.pin)
        val session = sims.createSession(listOf("eip155:1"))
        val opened = core.openPairLink(session.link) as PairStateView.CodeNeeded
        assertTrue(core.submitCode(opened.flowId, session.code) is PairStateView.CodeVerified)
        val account = core.applianceWallets(listOf("eip155:1")).first().account
        core.chooseWallets(opened.flowId, listOf(account))
        val pairId = (core.approvePair(opened.flowId) as PairStateView.Paired).pairId

        // A USDC transfer: the amount in USDC, the recipient by the user's label.
        val transferSp = sims.requestSignature(pairId, account, listOf("--evm-tx", USDC_TRANSFER_HEX), timeoutSecs = 60)
            .also { closeables += it }
        val transfer = next(core)
        assertEquals("1.5 USDC", transfer.value("amount"), "${transfer.fields}")
        assertEquals("Alice (your label, 0x2222…2222)", transfer.value("recipient"), "${transfer.fields}")
        assertTrue(!transfer.blind && !transfer.blocked, "$transfer")
        core.approveSign(transfer.requestId)
        assertEquals("signed", transferSp.await().status)

        // A Uniswap swap, rendered from its ERC-7730 descriptor: the intent and named fields.
        core.removeAddressLabel("eip155:1", RECIPIENT)
        val swapSp = sims.requestSignature(pairId, account, listOf("--evm-tx", UNISWAP_SWAP_HEX), timeoutSecs = 60)
            .also { closeables += it }
        val swap = next(core)
        assertEquals("swap", swap.title)
        assertEquals(
            listOf(
                "Interaction with" to "Uniswap Labs",
                "Send" to "1 WETH",
                "Minimum to Receive" to "3,000 USDC",
                "Uniswap fee" to "0.3%",
                "Beneficiary" to "0x2222222222222222222222222222222222222222",
            ),
            swap.fields.filter { it.key.startsWith("clear.") }.map { it.label to it.value },
        )
        assertEquals("clear.params.amountIn", swap.fields.first { it.label == "Send" }.key)
        assertTrue(!swap.blind, "$swap")
        core.rejectSign(swap.requestId)
        val declined = swapSp.await()
        assertEquals(2, declined.exitCode, "sp sign: ${declined.output}")
        assertTrue(declined.output.any { it.contains("sign_rejected") }, "${declined.output}")
        assertNull(core.addressLabels().firstOrNull())
        // Both label changes are in the audit log, about the account labelled.
        val changes = core.auditLog().filter { it.event is AuditEventView.AddressLabelChanged }
        assertEquals(
            listOf(AuditEventView.AddressLabelChanged(null), AuditEventView.AddressLabelChanged("Alice")),
            changes.map { it.event },
        )
        assertTrue(changes.all { it.subject == "eip155:1:$RECIPIENT" }, "$changes")
    }
}
