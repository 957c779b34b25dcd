package xyz.sigilvault.sunstorm.android.presence

import android.app.Activity
import android.app.KeyguardManager
import android.hardware.biometrics.BiometricManager
import android.hardware.biometrics.BiometricPrompt
import android.os.CancellationSignal
import android.os.Looper
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ExecutionException
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import xyz.sigilvault.sunstorm.UserPresence
import xyz.sigilvault.sunstorm.UserPresenceException

/**
 * The core's [UserPresence] on the framework `BiometricPrompt` (strong biometrics or the
 * device PIN/pattern/password). The core calls [verify] on a worker thread; the prompt is
 * shown on the main thread over the activity [foreground] returns, and the call blocks
 * until the user answers (bounded by [timeoutMs]).
 *
 * Returns false when the user cancels or fails; throws `UserPresenceException.Unavailable`
 * when no screen lock is set or no activity is in the foreground.
 */
class BiometricUserPresence(
    private val foreground: () -> Activity?,
    private val title: String = "Confirm it's you",
    private val timeoutMs: Long = 120_000,
) : UserPresence {
    override fun verify(reason: String): Boolean {
        if (Looper.myLooper() == Looper.getMainLooper()) {
            throw UserPresenceException.Failed("verify() must not be called on the main thread")
        }
        val activity = foreground() ?: throw UserPresenceException.Unavailable("no activity in the foreground")
        val authenticators = BiometricManager.Authenticators.BIOMETRIC_STRONG or BiometricManager.Authenticators.DEVICE_CREDENTIAL
        val keyguard = activity.getSystemService(KeyguardManager::class.java)
        if (keyguard?.isDeviceSecure != true) {
            throw UserPresenceException.Unavailable("set a screen lock to approve requests")
        }
        val answer = CompletableFuture<Boolean>()
        val cancel = CancellationSignal()
        activity.runOnUiThread {
            val prompt = BiometricPrompt.Builder(activity)
                .setTitle(title)
                .setDescription(reason)
                .setAllowedAuthenticators(authenticators)
                .build()
            prompt.authenticate(
                cancel,
                activity.mainExecutor,
                object : BiometricPrompt.AuthenticationCallback() {
                    override fun onAuthenticationSucceeded(result: BiometricPrompt.AuthenticationResult) {
                        answer.complete(true)
                    }

                    override fun onAuthenticationError(errorCode: Int, errString: CharSequence) {
                        // Cancelled, locked out, timed out: not verified.
                        answer.complete(false)
                    }
                    // onAuthenticationFailed (one bad finger) lets the user retry: no answer yet.
                },
            )
        }
        return try {
            answer.get(timeoutMs, TimeUnit.MILLISECONDS)
        } catch (e: TimeoutException) {
            cancel.cancel()
            false
        } catch (e: ExecutionException) {
            throw UserPresenceException.Failed(e.cause.toString())
        }
    }
}
