package xyz.sigilvault.sunstorm.android.approval

import android.app.Activity
import android.content.Context
import android.content.pm.PackageManager
import android.hardware.biometrics.BiometricManager
import android.hardware.biometrics.BiometricPrompt
import android.os.CancellationSignal
import android.os.Looper
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyPermanentlyInvalidatedException
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import java.security.GeneralSecurityException
import java.security.KeyPairGenerator
import java.security.KeyStore
import java.security.PrivateKey
import java.security.ProviderException
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ExecutionException
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import xyz.sigilvault.sunstorm.ApprovalKey
import xyz.sigilvault.sunstorm.ApprovalKeyException

/**
 * The core's [ApprovalKey] on the Android Keystore: a non-exportable P-256 key (alias
 * [KEY_ALIAS], in StrongBox when the device has one) that can sign only after a strong
 * biometric check, for every signature (`setUserAuthenticationRequired(true)` with
 * `setUserAuthenticationParameters(0, AUTH_BIOMETRIC_STRONG)`), and that the Keystore
 * invalidates when biometrics are added or removed
 * (`setInvalidatedByBiometricEnrollment(true)`). The appliance checks its signatures
 * (docs/android.md, "Approvals the appliance can verify"; ADR 0029).
 *
 * The core calls [sign] on a worker thread: the framework `BiometricPrompt` is shown over
 * the activity [foreground] returns, with the `Signature` as its `CryptoObject`, and the
 * call blocks until the user answers (bounded by [timeoutMs]). Errors:
 * - the user cancels (or the prompt times out): `ApprovalKeyException.Cancelled`;
 * - too many attempts: `LockedOut`;
 * - biometrics changed (`KeyPermanentlyInvalidatedException`): `KeyInvalidated`, and the
 *   dead key is deleted so that [publicKey] creates a new one for `enrolApprovalKey`;
 * - no strong biometric enrolled or no sensor: `NoBiometrics`;
 * - anything else: `Failed` (no activity in the foreground, Keystore errors).
 */
class KeystoreApprovalKey(
    private val context: Context,
    private val foreground: () -> Activity?,
    private val title: String = "Approve the request",
    private val subtitle: String = "Your appliance checks this approval",
    private val timeoutMs: Long = 120_000,
    private val alias: String = KEY_ALIAS,
) : ApprovalKey {
    private val lock = Any()

    /**
     * The key's public half as SEC1 `0x04 || x || y`; creates the key when there is none or
     * the Keystore invalidated it. Needs no biometric check (but a strong biometric must
     * be enrolled to create one).
     */
    override fun publicKey(): ByteArray = synchronized(lock) {
        guard {
            val ks = keyStore()
            val existing = ks.getKey(alias, null) as? PrivateKey
            if (existing != null && !usable(existing)) ks.deleteEntry(alias)
            if (ks.getKey(alias, null) == null) create()
            val cert = ks.getCertificate(alias) ?: throw ApprovalKeyException.Failed("the Keystore has no certificate for the key")
            ApprovalKeySupport.sec1(cert.publicKey as? ECPublicKey ?: throw ApprovalKeyException.Failed("the Keystore key is not an EC key"))
        }
    }

    override fun sign(message: ByteArray): ByteArray {
        if (Looper.myLooper() == Looper.getMainLooper()) {
            throw ApprovalKeyException.Failed("sign() must not be called on the main thread")
        }
        val signature = synchronized(lock) {
            guard {
                val key = keyStore().getKey(alias, null) as? PrivateKey
                    ?: throw ApprovalKeyException.KeyInvalidated() // gone: a new key must be enrolled
                checkBiometrics()
                try {
                    Signature.getInstance(SIGNATURE_ALGORITHM).apply { initSign(key) }
                } catch (e: KeyPermanentlyInvalidatedException) {
                    keyStore().deleteEntry(alias)
                    throw ApprovalKeyException.KeyInvalidated()
                }
            }
        }
        val activity = foreground() ?: throw ApprovalKeyException.Failed("no activity in the foreground")
        val authorised = prompt(activity, signature)
        return guard {
            authorised.update(message)
            authorised.sign() // DER, over SHA-256 of the message
        }
    }

    /** Shows the prompt with [signature] as its crypto object; the authorised signature. */
    private fun prompt(activity: Activity, signature: Signature): Signature {
        val answer = CompletableFuture<Signature>()
        val cancel = CancellationSignal()
        activity.runOnUiThread {
            val prompt = BiometricPrompt.Builder(activity)
                .setTitle(title)
                .setSubtitle(subtitle)
                .setAllowedAuthenticators(BiometricManager.Authenticators.BIOMETRIC_STRONG)
                .setNegativeButton("Cancel", activity.mainExecutor) { _, _ ->
                    answer.completeExceptionally(ApprovalKeyException.Cancelled())
                }
                .build()
            prompt.authenticate(
                BiometricPrompt.CryptoObject(signature),
                cancel,
                activity.mainExecutor,
                object : BiometricPrompt.AuthenticationCallback() {
                    override fun onAuthenticationSucceeded(result: BiometricPrompt.AuthenticationResult) {
                        val s = result.cryptoObject?.signature
                        if (s == null) {
                            answer.completeExceptionally(ApprovalKeyException.Failed("the prompt returned no signature"))
                        } else {
                            answer.complete(s)
                        }
                    }

                    override fun onAuthenticationError(errorCode: Int, errString: CharSequence) {
                        answer.completeExceptionally(ApprovalKeySupport.promptError(errorCode, errString))
                    }
                    // onAuthenticationFailed (one bad finger) lets the user retry: no answer yet.
                },
            )
        }
        return try {
            answer.get(timeoutMs, TimeUnit.MILLISECONDS)
        } catch (e: TimeoutException) {
            cancel.cancel()
            throw ApprovalKeyException.Cancelled()
        } catch (e: ExecutionException) {
            throw e.cause as? ApprovalKeyException ?: ApprovalKeyException.Failed(e.cause.toString())
        } catch (e: InterruptedException) {
            cancel.cancel()
            Thread.currentThread().interrupt()
            throw ApprovalKeyException.Cancelled()
        }
    }

    /** `NoBiometrics` unless a strong biometric is enrolled and its sensor works. */
    private fun checkBiometrics() {
        val manager = context.getSystemService(BiometricManager::class.java)
            ?: throw ApprovalKeyException.NoBiometrics()
        when (manager.canAuthenticate(BiometricManager.Authenticators.BIOMETRIC_STRONG)) {
            BiometricManager.BIOMETRIC_SUCCESS -> Unit
            BiometricManager.BIOMETRIC_ERROR_NONE_ENROLLED,
            BiometricManager.BIOMETRIC_ERROR_NO_HARDWARE -> throw ApprovalKeyException.NoBiometrics()
            BiometricManager.BIOMETRIC_ERROR_HW_UNAVAILABLE ->
                throw ApprovalKeyException.Failed("the biometric sensor is unavailable right now")
            else -> throw ApprovalKeyException.Failed("biometrics cannot be used (a security update may be required)")
        }
    }

    /** Whether [key] can still be used (`false`: the Keystore invalidated it). */
    private fun usable(key: PrivateKey): Boolean = try {
        Signature.getInstance(SIGNATURE_ALGORITHM).initSign(key)
        true
    } catch (e: KeyPermanentlyInvalidatedException) {
        false
    }

    /** A new key, in StrongBox when the device has one. */
    private fun create() {
        checkBiometrics()
        val strongBox = context.packageManager.hasSystemFeature(PackageManager.FEATURE_STRONGBOX_KEYSTORE)
        try {
            generate(strongBox)
        } catch (e: StrongBoxUnavailableException) {
            generate(false)
        }
    }

    private fun generate(strongBox: Boolean) {
        val spec = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_SIGN)
            .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
            .setDigests(KeyProperties.DIGEST_SHA256)
            .setUserAuthenticationRequired(true)
            // 0 s: every use needs its own biometric check, through a CryptoObject.
            .setUserAuthenticationParameters(0, KeyProperties.AUTH_BIOMETRIC_STRONG)
            .setInvalidatedByBiometricEnrollment(true)
            .setIsStrongBoxBacked(strongBox)
            .build()
        KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, ANDROID_KEYSTORE).apply {
            initialize(spec)
            generateKeyPair()
        }
    }

    private fun keyStore(): KeyStore = KeyStore.getInstance(ANDROID_KEYSTORE).apply { load(null) }

    private fun <T> guard(block: () -> T): T = try {
        block()
    } catch (e: ApprovalKeyException) {
        throw e
    } catch (e: KeyPermanentlyInvalidatedException) {
        runCatching { keyStore().deleteEntry(alias) }
        throw ApprovalKeyException.KeyInvalidated()
    } catch (e: GeneralSecurityException) {
        throw ApprovalKeyException.Failed("Keystore: ${e.javaClass.simpleName}")
    } catch (e: ProviderException) {
        throw ApprovalKeyException.Failed("Keystore: ${e.javaClass.simpleName}")
    }

    companion object {
        /** The Keystore alias of the approval key. */
        const val KEY_ALIAS = "sunstorm.approval.p256"
        private const val ANDROID_KEYSTORE = "AndroidKeyStore"
        private const val SIGNATURE_ALGORITHM = "SHA256withECDSA"
    }
}
