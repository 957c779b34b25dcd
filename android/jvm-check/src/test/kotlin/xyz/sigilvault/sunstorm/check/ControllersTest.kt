package xyz.sigilvault.sunstorm.check

import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import org.junit.jupiter.api.Test
import xyz.sigilvault.sunstorm.FlowProgress
import xyz.sigilvault.sunstorm.SunstormException
import xyz.sigilvault.sunstorm.sample.state.BondController
import xyz.sigilvault.sunstorm.sample.state.DemoFlows
import xyz.sigilvault.sunstorm.sample.state.PairController
import xyz.sigilvault.sunstorm.sample.state.PairScreen
import xyz.sigilvault.sunstorm.sample.state.PairsController
import xyz.sigilvault.sunstorm.sample.state.SignController
import xyz.sigilvault.sunstorm.sample.state.progressText

/**
 * The sample's screen logic (plain Kotlin, what the Compose screens render) over the
 * scripted flows. The Unconfined dispatcher runs each action to completion in the call.
 */
class ControllersTest {
    private val scope = CoroutineScope(Dispatchers.Unconfined)
    private val link = "https://sigilvault.xyz/pair?session=ps_4kT9xQ2mV7nB1cR8sL0wYz"

    private fun bonded(flows: DemoFlows): DemoFlows {
        val bond = BondController(flows, scope)
        bond.scan()
        bond.editPin(flows.pin)
        bond.bond()
        assertEquals("Sigil appliance", bond.state.value.bonded?.name)
        return flows
    }

    @Test
    fun `single-device flow - prefilled code, SP card, wallets, confirm on appliance, return_url`() {
        val flows = bonded(DemoFlows())
        val pair = PairController(flows, scope)
        pair.open("$link&v=123456", "ps_4kT9xQ2mV7nB1cR8sL0wYz")

        val code = assertIs<PairScreen.EnterCode>(pair.state.value)
        assertEquals("123456", code.code)
        assertTrue(code.prefilled)
        assertEquals("Acme Exchange", code.card.spName)
        assertTrue(code.canSubmit)
        pair.submitCode()

        val wallets = assertIs<PairScreen.ChooseWallets>(pair.state.value)
        // Solana has one wallet: preselected. Ethereum has two: the user chooses. Polygon was not requested.
        assertEquals(setOf("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp:7S3P4HxJpyyigGzodYwHtCxZyUQe9JiBMHyRWXArAaKv"), wallets.selected)
        pair.toggleWallet("eip155:137:0x52908400098527886E0F7030069857D2E4169EE7")
        assertEquals(1, (pair.state.value as PairScreen.ChooseWallets).selected.size, "an unrequested chain cannot be selected")
        pair.toggleWallet("eip155:1:0x8617E340B3D01FA5F11F306F4090FD50E238070D")
        pair.approve()

        val done = assertIs<PairScreen.Done>(pair.state.value)
        assertEquals("https://acme.example/sigil/done", done.returnUrl)
        assertEquals(2, done.bindings.size)
    }

    @Test
    fun `two-device flow - wrong codes count down, then the session locks`() {
        val flows = bonded(DemoFlows())
        val pair = PairController(flows, scope)
        pair.open(link, "ps_4kT9xQ2mV7nB1cR8sL0wYz")
        val empty = assertIs<PairScreen.EnterCode>(pair.state.value)
        assertFalse(empty.prefilled)
        assertFalse(empty.canSubmit)

        pair.editCode("12 34-5")
        assertFalse((pair.state.value as PairScreen.EnterCode).canSubmit, "five digits")
        pair.editCode("111111")
        pair.submitCode()
        val wrong = assertIs<PairScreen.EnterCode>(pair.state.value)
        assertEquals("Wrong code, 2 attempts left", wrong.error)
        assertEquals(2, wrong.attemptsLeft)
        assertEquals("", wrong.code, "the wrong code is cleared")

        pair.editCode("222222"); pair.submitCode()
        pair.editCode("333333"); pair.submitCode()
        val ended = assertIs<PairScreen.Ended>(pair.state.value)
        assertTrue(ended.message.startsWith("Too many wrong codes"))
    }

    @Test
    fun `approving without a bonded appliance says so, rejecting ends the flow`() {
        val pair = PairController(DemoFlows(), scope)
        pair.open("$link&v=123456", "s")
        pair.submitCode()
        pair.approve()
        assertEquals("Bond this phone with your appliance first.", assertIs<PairScreen.Ended>(pair.state.value).message)

        val other = PairController(DemoFlows(), scope)
        other.open(link, "s")
        other.reject()
        assertEquals("Pairing declined.", assertIs<PairScreen.Ended>(other.state.value).message)
    }

    @Test
    fun `bonding - wrong PIN counts down`() {
        val bond = BondController(DemoFlows(), scope)
        bond.scan()
        assertEquals("AA:BB:CC:DD:EE:01", bond.state.value.chosen?.peripheralId)
        bond.editPin("0000")
        bond.bond()
        assertEquals("Wrong PIN, 2 attempts left", bond.state.value.error)
        assertNull(bond.state.value.bonded)
    }

    @Test
    fun `sign requests - blocked ones cannot be approved, others are signed or rejected`() {
        val flows = bonded(DemoFlows())
        val sign = SignController(flows, scope)
        sign.refresh()
        val requests = sign.state.value.requests
        assertEquals(2, requests.size)
        val blocked = requests.single { it.blocked }
        assertEquals("Your guardrails forbid unlimited approvals", blocked.violations.single().message)
        assertEquals("unlimited_approval", blocked.warnings.single().code)

        sign.approve(blocked.requestId)
        assertEquals(2, sign.state.value.requests.size, "no approve for a blocked request")
        sign.approve("req-send-eth")
        assertEquals("Signed and sent to Acme Exchange.", sign.state.value.message)
        sign.reject(blocked.requestId)
        assertTrue(sign.state.value.requests.isEmpty())
    }

    @Test
    fun `pairs - revoke asks first, then marks the pair revoked`() {
        val flows = bonded(DemoFlows())
        val pair = PairController(flows, scope)
        pair.open("$link&v=123456", "s"); pair.submitCode(); pair.approve()
        val pairs = PairsController(flows, scope)
        pairs.refresh()
        val id = pairs.state.value.pairs.single().pairId
        pairs.askRevoke(id)
        assertEquals(id, pairs.state.value.confirmRevoke)
        pairs.confirmRevoke()
        assertFalse(pairs.state.value.pairs.single().active)
        assertEquals("Pairing revoked.", pairs.state.value.message)
    }

    @Test
    fun `progress lines`() {
        assertEquals("Confirm on your appliance", progressText(FlowProgress.WaitingForApplianceConfirmation))
        assertEquals("Sending… 50%", progressText(FlowProgress.SendingToAppliance(5, 10)))
        assertEquals("Connection lost, reconnecting (attempt 2)…", progressText(FlowProgress.ReconnectingToAppliance(2)))
        assertIs<SunstormException.WrongCode>(SunstormException.WrongCode(1))
    }
}
