package xyz.sigilvault.sunstorm.sample.platform

import android.app.Activity
import android.app.Application
import android.hardware.biometrics.BiometricManager
import android.os.Build
import android.os.Bundle
import java.lang.ref.WeakReference
import xyz.sigilvault.sunstorm.CoreConfig
import xyz.sigilvault.sunstorm.LogLevel
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.android.approval.KeystoreApprovalKey
import xyz.sigilvault.sunstorm.android.ble.AndroidBleCentral
import xyz.sigilvault.sunstorm.android.http.PlatformHttpClient
import xyz.sigilvault.sunstorm.android.link.PairLinkRouter
import xyz.sigilvault.sunstorm.android.log.LogcatSink
import xyz.sigilvault.sunstorm.android.presence.BiometricUserPresence
import xyz.sigilvault.sunstorm.android.secrets.KeystoreSecretStore
import xyz.sigilvault.sunstorm.sample.state.DemoFlows
import xyz.sigilvault.sunstorm.sample.state.SunstormFlows
import xyz.sigilvault.sunstorm.setLogSink

/**
 * The sample's process-wide objects: one `SunstormCore` (created once, kept for the life
 * of the process, per docs/embedding.md), the link router and the flows the screens use.
 *
 * The platform services never hold the core (no reference cycle across the FFI); the
 * user-presence prompt finds the foreground activity through a weak reference.
 */
class SampleApplication : Application() {
    private var foreground = WeakReference<Activity>(null)

    /** The core. */
    lateinit var core: SunstormCore
        private set

    /** App Link / QR routing through the core's strict parser. */
    lateinit var router: PairLinkRouter
        private set

    /** What the screens call: the core ([CoreFlows]), or the scripted demo for UI previews ([DEMO_MODE]). */
    lateinit var flows: SunstormFlows
        private set

    override fun onCreate() {
        super.onCreate()
        registerActivityLifecycleCallbacks(ForegroundTracker())
        setLogSink(LogcatSink(), LogLevel.INFO)
        core = SunstormCore(
            CoreConfig(
                octaneUrl = OCTANE_URL,
                octanePublicKeyHex = OCTANE_PUBLIC_KEY_HEX,
                acceptedLinkHosts = listOf("sigilvault.xyz"),
                databasePath = noBackupFilesDir.resolve("sunstorm.db").path,
                phoneName = Build.MODEL,
                // Clear signing: the signed metadata bundle ships as an asset (build.gradle.kts
                // copies metadata/bundle.cbor), its key is pinned.
                metadataPublicKeyHex = METADATA_PUBLIC_KEY_HEX,
                metadataBundle = assets.open("metadata/bundle.cbor").use { it.readBytes() },
            ),
            AndroidBleCentral(this),
            PlatformHttpClient(),
            KeystoreSecretStore(this),
            BiometricUserPresence({ foreground.get() }),
            // The appliance checks each approval's signature by this biometric-bound key
            // (docs/android.md); without strong biometrics the phone approves without one.
            approvalKey = if (strongBiometrics()) KeystoreApprovalKey(this, { foreground.get() }) else null,
        )
        router = PairLinkRouter(core::parseLink)
        flows = if (DEMO_MODE) DemoFlows(stepDelayMs = 600) else CoreFlows(core)
    }

    private fun strongBiometrics(): Boolean =
        getSystemService(BiometricManager::class.java)
            ?.canAuthenticate(BiometricManager.Authenticators.BIOMETRIC_STRONG) == BiometricManager.BIOMETRIC_SUCCESS

    private inner class ForegroundTracker : ActivityLifecycleCallbacks {
        override fun onActivityResumed(activity: Activity) {
            foreground = WeakReference(activity)
        }

        override fun onActivityPaused(activity: Activity) {
            if (foreground.get() === activity) foreground = WeakReference(null)
        }

        override fun onActivityCreated(activity: Activity, savedInstanceState: Bundle?) = Unit
        override fun onActivityStarted(activity: Activity) = Unit
        override fun onActivityStopped(activity: Activity) = Unit
        override fun onActivitySaveInstanceState(activity: Activity, outState: Bundle) = Unit
        override fun onActivityDestroyed(activity: Activity) = Unit
    }

    /** Build-time settings of the sample (a real app takes them from BuildConfig). */
    companion object {
        /** Octane; for the laptop simulator use `http://127.0.0.1:<port>` with `adb reverse`. */
        const val OCTANE_URL = "http://127.0.0.1:8080"

        /** Octane's pinned Ed25519 key (printed by `sunstorm sim octane`). */
        const val OCTANE_PUBLIC_KEY_HEX = "0000000000000000000000000000000000000000000000000000000000000000"

        /**
         * The metadata key `metadata/bundle.cbor` is signed with: the repository's
         * DEVELOPMENT key (anyone can sign with it). A real app pins its own signer's key.
         */
        const val METADATA_PUBLIC_KEY_HEX = "ebfe4619b374c565c8629e2a7f1cb1018e8c11578855d65f0df09d0dfa4a88ec"

        /**
         * Scripted flows ([DemoFlows]) instead of the core, for UI previews without an
         * appliance or octane only. Off: the screens run on the real core.
         */
        const val DEMO_MODE = false
    }
}
