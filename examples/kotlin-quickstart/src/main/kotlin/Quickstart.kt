// Sunstorm core from a plain JVM program: bond with an appliance, pair with a service,
// approve a sign request. The appliance, octane and the service are the `sunstorm`
// simulators; on a phone the same calls run with the platform's BLE, Keystore and biometrics.
import java.nio.file.Files
import kotlinx.coroutines.runBlocking
import xyz.sigilvault.sunstorm.LogLevel
import xyz.sigilvault.sunstorm.PairStateView
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.WalletRowState
import xyz.sigilvault.sunstorm.desktop.ConsoleLogSink
import xyz.sigilvault.sunstorm.desktop.ConsoleUserPresence
import xyz.sigilvault.sunstorm.desktop.FileSecretStore
import xyz.sigilvault.sunstorm.desktop.JdkHttpClient
import xyz.sigilvault.sunstorm.desktop.Simulators
import xyz.sigilvault.sunstorm.setLogSink

fun main(): Unit = runBlocking {
    val dir = Files.createTempDirectory("sunstorm-quickstart")
    setLogSink(ConsoleLogSink(), LogLevel.WARN)
    Simulators.start(dir).use { sims ->
        println("simulators: octane at ${sims.octaneUrl}, appliance PIN ${sims.pin}")
        SunstormCore(
            sims.coreConfig(dir.resolve("sunstorm.db"), phoneName = "Kotlin quickstart"),
            sims.bleCentral(),                         // the appliance simulator's socket
            JdkHttpClient(),                           // octane over java.net.http
            FileSecretStore(dir.resolve("secrets")),   // the phone's keys, 0600 files
            ConsoleUserPresence(autoApprove = true),   // stands in for the biometric prompt
        ).use { core ->
            // 1. Bond: find the appliance, prove the PIN it shows.
            val appliance = core.scanAppliances().first()
            val bond = core.bondAppliance(appliance.peripheralId, sims.pin)
            println("bonded: ${bond.name} (${bond.identityFingerprint})")

            // 2. Pair: the service shows a link (or QR) and a code; the user picks a wallet.
            val session = sims.createSession(chains = listOf("eip155:1"))
            val opened = core.openPairLink(session.link) as PairStateView.CodeNeeded
            println("service: ${opened.card.spName} asks for ${opened.card.requestedChainNames}")
            core.submitCode(opened.flowId, session.code)
            val wallet = core.walletChoices(opened.flowId).first { it.state == WalletRowState.SELECTABLE }
            core.chooseWallets(opened.flowId, listOf(wallet.account))
            val paired = core.approvePair(opened.flowId) as PairStateView.Paired
            println("paired: ${paired.pairId} with ${paired.accounts.single()}")

            // 3. Sign: the service asks; the phone shows what it is, the user approves.
            val waiting = sims.requestSignature(paired.pairId, wallet.account, sample = "eip1559")
            val request = core.pendingSignRequests().first()
            println("sign request: ${request.title}")
            request.fields.forEach { println("  ${it.label}: ${it.value}") }
            core.approveSign(request.requestId)
            val result = waiting.await()
            println("signed: ${result.status} (request ${result.requestId})")
        }
    }
}
